using System.Diagnostics;
using Fieldline.Core.Telemetry;
using Fieldline.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fieldline.Benchmarks;

/// <summary>
/// Append throughput of <see cref="SqliteTelemetryStore"/>: 10,000-point batches over 1,000 series (100 devices
/// x 10 metrics, 1 s period with jitter), then bytes per point on disk once every head is sealed.
/// Run: <c>dotnet run -c Release --project bench/Fieldline.Benchmarks -- store-load [points] [maxHeadPoints]</c>;
/// a huge maxHeadPoints measures the durable log alone (nothing is sealed until the end).
/// </summary>
internal static class StoreLoad
{
    private const int BatchPoints = 10_000;
    private const int Devices = 100;
    private const int MetricsPerDevice = 10;

    public static async Task<int> RunAsync(string[] args)
    {
        var totalPoints = args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3_000_000;
        var maxHeadPoints = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 240;
        var directory = Path.Combine(Path.GetTempPath(), "fieldline-store-load-" + Guid.NewGuid().ToString("N"));
        var path = Path.Combine(directory, "telemetry.db");
        var random = new Random(1);
        var devices = Enumerable.Range(0, Devices).Select(d => $"device-{d:D3}").ToArray();
        var metrics = Enumerable.Range(0, MetricsPerDevice).Select(m => $"metric-{m}").ToArray();
        var values = new double[Devices * MetricsPerDevice];
        var batch = new TelemetryPoint[BatchPoints];
        var startMs = 1_732_550_000_000L;
        long round = 0;
        long written = 0;
        var appendTime = TimeSpan.Zero;

        try
        {
            var store = new SqliteTelemetryStore(path, TimeProvider.System, new SqliteTelemetryStoreOptions { CompactionInterval = TimeSpan.Zero, MaxHeadPoints = maxHeadPoints }, NullLogger<SqliteTelemetryStore>.Instance);
            await store.OpenAsync(CancellationToken.None);
            while (written < totalPoints)
            {
                for (var i = 0; i < BatchPoints; i++, round += (i % values.Length == 0) ? 1 : 0)
                {
                    var series = i % values.Length;
                    values[series] = Math.Round(values[series] + ((random.NextDouble() - 0.5) * 0.4), 1);
                    batch[i] = new TelemetryPoint(devices[series / MetricsPerDevice], metrics[series % MetricsPerDevice], startMs + (round * 1000) + random.Next(0, 20), values[series]);
                }

                var started = Stopwatch.GetTimestamp();
                await store.AppendAsync(batch, CancellationToken.None);
                appendTime += Stopwatch.GetElapsedTime(started);
                written += BatchPoints;
            }

            var sealStarted = Stopwatch.GetTimestamp();
            await store.CompactAsync(sealAll: true, CancellationToken.None);
            var sealTime = Stopwatch.GetElapsedTime(sealStarted);
            await store.DisposeAsync();

            var (chunkBytes, chunkPoints, chunks) = ChunkTotals(path);
            var fileBytes = new FileInfo(path).Length;
            Console.WriteLine($"points appended:        {written:N0} in {appendTime.TotalSeconds:F2} s ({written / appendTime.TotalSeconds:N0} points/s, sealing included)");
            Console.WriteLine($"final seal of all heads: {sealTime.TotalMilliseconds:F0} ms");
            Console.WriteLine($"chunks:                 {chunks:N0} holding {chunkPoints:N0} points");
            Console.WriteLine($"chunk data:             {(double)chunkBytes / chunkPoints:F2} bytes/point");
            Console.WriteLine($"baseline:               {PlainInsertRate(Path.Combine(directory, "baseline.db"), written):N0} rows/s for bare prepared INSERTs into a rowid table, same batches");
            Console.WriteLine($"database file:          {fileBytes:N0} bytes = {(double)fileBytes / written:F2} bytes/point (includes the emptied log's free pages)");
            return 0;
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    // The floor of any design on Microsoft.Data.Sqlite: one reused prepared INSERT per row, one transaction per batch.
    private static double PlainInsertRate(string path, long rows)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using (var setup = connection.CreateCommand())
        {
            setup.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t(seq INTEGER PRIMARY KEY, series INTEGER, ts INTEGER, value REAL);";
            setup.ExecuteNonQuery();
        }

        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO t(seq, series, ts, value) VALUES ($seq, $series, $ts, $value)";
        var seq = insert.Parameters.Add("$seq", SqliteType.Integer);
        var series = insert.Parameters.Add("$series", SqliteType.Integer);
        var ts = insert.Parameters.Add("$ts", SqliteType.Integer);
        var value = insert.Parameters.Add("$value", SqliteType.Real);
        var started = Stopwatch.GetTimestamp();
        for (long row = 0; row < rows; row += BatchPoints)
        {
            using var transaction = connection.BeginTransaction();
            insert.Transaction = transaction;
            for (var i = 0; i < BatchPoints; i++)
            {
                seq.Value = row + i + 1;
                series.Value = i % 1000;
                ts.Value = 1_732_550_000_000 + row + i;
                value.Value = 21.5;
                insert.ExecuteNonQuery();
            }

            transaction.Commit();
        }

        return rows / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static (long Bytes, long Points, long Chunks) ChunkTotals(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(SUM(length(data)), 0), COALESCE(SUM(count), 0), COUNT(*) FROM telemetry_chunk";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }
}
