using System.Buffers;
using System.Diagnostics;
using Fieldline.Core.Telemetry;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// The embedded time-series store: a durable SQLite log, in-memory series heads and Gorilla-compressed chunks.
/// Appends must come from one caller at a time (the ingest pipeline); queries may run concurrently.
/// </summary>
public sealed partial class SqliteTelemetryStore : ITelemetryStore
{
    // Design note (Prometheus-like head + WAL + chunks). Measured here, one indexed SQLite row per point
    // manages ~130k points/s, while plain rowid appends reach ~900k/s. So AppendAsync only appends the batch to
    // telemetry_log (one transaction, one prepared command, no secondary index): once that commit returns the
    // points are durable. The points then join per-series in-memory heads. A head is sealed into one compressed
    // telemetry_chunk row (~2 bytes/point instead of ~30) when it is full or old, together with an update of
    // series.flushed_seq in the same transaction; log rows older than the oldest unsealed point are then deleted.
    // Opening the store replays the log rows newer than each series' flushed_seq, so a crash loses nothing.
    // Queries merge the chunks overlapping the range with a snapshot of the head. Consistency: the head snapshot
    // and the series' flushed_seq are taken together under the head lock, and only chunks with
    // max_seq <= flushed_seq are read, so a chunk sealed concurrently is never counted along with the head
    // points it came from. Retention deletes whole chunks and records a cutoff that queries apply to the rest.
    private readonly string path;
    private readonly TimeProvider timeProvider;
    private readonly SqliteTelemetryStoreOptions options;
    private readonly ILogger logger;
    private readonly string readerConnectionString;

    // Serializes everything that writes: appends, sealing, retention, deletion, disposal.
    private readonly SemaphoreSlim writeGate = new(1, 1);

    // Guards the series maps, heads, latest values and the retention cutoff against concurrent queries.
    private readonly Lock headLock = new();
    private readonly Dictionary<SeriesKey, TelemetrySeries> seriesByKey = [];
    private readonly Dictionary<long, TelemetrySeries> seriesById = [];
    private readonly Dictionary<string, List<TelemetrySeries>> seriesByDevice = new(StringComparer.Ordinal);
    private readonly HashSet<TelemetrySeries> fullHeads = [];

    private SqliteConnection? writer;
    private RawStatement? insertLog;
    private long nextSeq = 1;
    private long logTruncatedBelow;
    private long retentionCutoffMs = long.MinValue;
    private CancellationTokenSource? compactorStop;
    private Task? compactor;
    private bool disposed;

    /// <summary>Creates the store; call <see cref="OpenAsync"/> before use.</summary>
    /// <param name="databasePath">The SQLite file; created with its directory when missing.</param>
    /// <param name="timeProvider">Server time, for head ages and the compactor's timer.</param>
    /// <param name="options">Head sizes and compaction timing.</param>
    /// <param name="logger">Log output.</param>
    public SqliteTelemetryStore(string databasePath, TimeProvider timeProvider, SqliteTelemetryStoreOptions options, ILogger<SqliteTelemetryStore> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxHeadPoints, 1, nameof(options));
        path = Path.GetFullPath(databasePath);
        this.timeProvider = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        this.options = options;
        this.logger = logger ?? throw new ArgumentNullException(nameof(logger));
        readerConnectionString = TelemetrySchema.ReaderConnectionString(path);
    }

    /// <inheritdoc />
    public long SizeBytes => FileSize(path) + FileSize(path + "-wal") + FileSize(path + "-shm");

    /// <inheritdoc />
    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (writer is not null)
            {
                throw new InvalidOperationException("The store is already open.");
            }

            Open();
        }
        finally
        {
            writeGate.Release();
        }

        if (options.CompactionInterval > TimeSpan.Zero)
        {
            compactorStop = new CancellationTokenSource();
            compactor = Task.Run(() => RunCompactorAsync(compactorStop.Token), CancellationToken.None);
        }
    }

    /// <inheritdoc />
    public async Task AppendAsync(ReadOnlyMemory<TelemetryPoint> points, CancellationToken cancellationToken)
    {
        if (points.IsEmpty)
        {
            return;
        }

        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = OpenWriter();
            AppendToLog(connection, points.Span);

            // Sealing right after the append keeps heads bounded. The points are durable already, so a failure
            // here must not fail the append: the compactor retries full heads at its next run.
            if (fullHeads.Count > 0)
            {
                try
                {
                    Seal(connection, fullHeads, fullRunsOnly: true);
                    TruncateLog(connection);
                }
                catch (Exception ex)
                {
                    // Whatever failed, the append itself succeeded: failing it now would make the device send
                    // points again that are already stored.
                    logger.CompactionFailed(ex);
                }
                finally
                {
                    fullHeads.Clear();
                }
            }
        }
        finally
        {
            writeGate.Release();
        }
    }

    /// <summary>Stops the compactor and closes the database. Unsealed heads stay in the log and are replayed at the next open.</summary>
    public async ValueTask DisposeAsync()
    {
        if (compactorStop is not null)
        {
            await compactorStop.CancelAsync().ConfigureAwait(false);
            await compactor!.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            compactorStop.Dispose();
        }

        await writeGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            insertLog?.Dispose();
            if (writer is not null)
            {
                // Folds the WAL back into the database so that a stopped store is one compact file.
                try
                {
                    Execute(writer, "PRAGMA wal_checkpoint(TRUNCATE)");
                }
                catch (SqliteException ex)
                {
                    logger.CompactionFailed(ex);
                }

                writer.Dispose();
                SqliteConnection.ClearPool(new SqliteConnection(readerConnectionString));
            }
        }
        finally
        {
            writeGate.Release();
        }
    }

    private void Open()
    {
        var started = Stopwatch.GetTimestamp();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var connection = new SqliteConnection(TelemetrySchema.WriterConnectionString(path));
        connection.Open();
        try
        {
            Execute(connection, TelemetrySchema.WriterPragmas);
            Execute(connection, TelemetrySchema.Create);
            retentionCutoffMs = ReadCutoff(connection);
            LoadSeries(connection);
            var replayed = ReplayLog(connection);
            SeedLatestFromChunks(connection);
            PrepareLogInsert(connection);
            writer = connection;

            // Heads replayed beyond their size are sealed now rather than at the next append.
            foreach (var series in seriesById.Values)
            {
                if (series.Head.Count >= options.MaxHeadPoints)
                {
                    fullHeads.Add(series);
                }
            }

            Seal(connection, fullHeads, fullRunsOnly: true);
            fullHeads.Clear();
            TruncateLog(connection);
            logger.Opened(path, seriesById.Count, replayed, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch
        {
            insertLog?.Dispose();
            insertLog = null;
            writer = null;
            connection.Dispose();
            throw;
        }
    }

    private static long ReadCutoff(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM telemetry_meta WHERE key = $key";
        command.Parameters.AddWithValue("$key", TelemetrySchema.RetentionCutoffKey);
        return command.ExecuteScalar() is long cutoff ? cutoff : long.MinValue;
    }

    private void LoadSeries(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, device_id, metric, unit, flushed_seq FROM series";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var series = new TelemetrySeries(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetInt64(4));
            Publish(series);
            nextSeq = Math.Max(nextSeq, series.FlushedSeq + 1);
        }
    }

    private long ReplayLog(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, series, ts, value FROM telemetry_log ORDER BY seq";
        using var reader = command.ExecuteReader();
        var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        long replayed = 0;
        while (reader.Read())
        {
            var seq = reader.GetInt64(0);
            nextSeq = Math.Max(nextSeq, seq + 1);
            if (!seriesById.TryGetValue(reader.GetInt64(1), out var series) || seq <= series.FlushedSeq)
            {
                continue;
            }

            var ts = reader.GetInt64(2);
            if (ts < retentionCutoffMs)
            {
                continue;
            }

            series.AddToHead(new HeadPoint(seq, ts, reader.IsDBNull(3) ? double.NaN : reader.GetDouble(3)), now);
            replayed++;
        }

        return replayed;
    }

    private void SeedLatestFromChunks(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT data FROM telemetry_chunk WHERE series = $series ORDER BY end_ts DESC, max_seq DESC LIMIT 1";
        var seriesParameter = command.Parameters.Add("$series", SqliteType.Integer);
        foreach (var series in seriesById.Values)
        {
            // A head point with the same timestamp is newer than any sealed one, so the chunk only fills gaps.
            seriesParameter.Value = series.Id;
            if (command.ExecuteScalar() is not byte[] data)
            {
                continue;
            }

            var decoder = new Fieldline.Core.Telemetry.Compression.ChunkDecoder(data);
            var found = false;
            long bestTs = 0;
            double bestValue = 0;
            while (decoder.TryNext(out var ts, out var value))
            {
                if (!found || ts >= bestTs)
                {
                    (found, bestTs, bestValue) = (true, ts, value);
                }
            }

            if (found && bestTs >= retentionCutoffMs && (!series.HasLatest || bestTs > series.LatestTimestampMs))
            {
                series.HasLatest = true;
                series.LatestTimestampMs = bestTs;
                series.LatestValue = bestValue;
            }
        }
    }

    private void PrepareLogInsert(SqliteConnection connection)
    {
        // Through SQLite's API directly: a command would box each of the four values of every point.
        insertLog = new RawStatement(connection, "INSERT INTO telemetry_log(seq, series, ts, value) VALUES (?1, ?2, ?3, ?4)");
    }

    private void AppendToLog(SqliteConnection connection, ReadOnlySpan<TelemetryPoint> points)
    {
        var seriesOfPoint = ArrayPool<TelemetrySeries>.Shared.Rent(points.Length);
        Dictionary<SeriesKey, TelemetrySeries>? created = null;
        Dictionary<TelemetrySeries, string>? unitChanges = null;
        var firstSeq = nextSeq;
        try
        {
            using (var transaction = connection.BeginTransaction())
            {
                for (var i = 0; i < points.Length; i++)
                {
                    ref readonly var point = ref points[i];
                    var key = new SeriesKey(point.DeviceId, point.Metric);

                    // Only this writer mutates the maps, so reading them without the head lock is safe here.
                    if (!seriesByKey.TryGetValue(key, out var series) && (created is null || !created.TryGetValue(key, out series)))
                    {
                        series = InsertSeries(connection, transaction, point);
                        (created ??= []).Add(key, series);
                    }
                    else if (point.Unit is not null && !string.Equals(point.Unit, unitChanges?.GetValueOrDefault(series) ?? series.Unit, StringComparison.Ordinal))
                    {
                        // A device changed the unit it reports (rare): the series takes the newest one.
                        UpdateUnit(connection, transaction, series.Id, point.Unit);
                        (unitChanges ??= [])[series] = point.Unit;
                    }

                    seriesOfPoint[i] = series;
                    insertLog!.Bind(1, firstSeq + i);
                    insertLog.Bind(2, series.Id);
                    insertLog.Bind(3, point.TimestampMs);
                    insertLog.Bind(4, point.Value);
                    insertLog.Execute();
                }

                transaction.Commit();
            }

            // Durable from here on; now make the points visible to queries.
            nextSeq = firstSeq + points.Length;
            var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            lock (headLock)
            {
                if (created is not null)
                {
                    foreach (var series in created.Values)
                    {
                        Publish(series);
                    }
                }

                if (unitChanges is not null)
                {
                    foreach (var (series, unit) in unitChanges)
                    {
                        series.Unit = unit;
                    }
                }

                for (var i = 0; i < points.Length; i++)
                {
                    var series = seriesOfPoint[i];
                    series.AddToHead(new HeadPoint(firstSeq + i, points[i].TimestampMs, points[i].Value), now);
                    // At or above: a head that missed a seal (a failed compaction) is retried with the next append.
                    if (series.Head.Count >= options.MaxHeadPoints)
                    {
                        fullHeads.Add(series);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<TelemetrySeries>.Shared.Return(seriesOfPoint, clearArray: true);
        }
    }

    private static TelemetrySeries InsertSeries(SqliteConnection connection, SqliteTransaction transaction, in TelemetryPoint point)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO series(device_id, metric, unit, flushed_seq) VALUES ($device, $metric, $unit, 0) RETURNING id";
        command.Parameters.AddWithValue("$device", point.DeviceId);
        command.Parameters.AddWithValue("$metric", point.Metric);
        command.Parameters.AddWithValue("$unit", (object?)point.Unit ?? DBNull.Value);
        var id = (long)command.ExecuteScalar()!;
        return new TelemetrySeries(id, point.DeviceId, point.Metric, point.Unit, 0);
    }

    private static void UpdateUnit(SqliteConnection connection, SqliteTransaction transaction, long seriesId, string unit)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "UPDATE series SET unit = $unit WHERE id = $id";
        command.Parameters.AddWithValue("$unit", unit);
        command.Parameters.AddWithValue("$id", seriesId);
        command.ExecuteNonQuery();
    }

    private void Publish(TelemetrySeries series)
    {
        seriesByKey[new SeriesKey(series.DeviceId, series.Metric)] = series;
        seriesById[series.Id] = series;
        if (!seriesByDevice.TryGetValue(series.DeviceId, out var list))
        {
            seriesByDevice[series.DeviceId] = list = [];
        }

        list.Add(series);
    }

    private SqliteConnection OpenWriter()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return writer ?? throw new InvalidOperationException("The store is not open; call OpenAsync first.");
    }

    private SqliteConnection OpenReader()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (writer is null)
        {
            throw new InvalidOperationException("The store is not open; call OpenAsync first.");
        }

        var connection = new SqliteConnection(readerConnectionString);
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long FileSize(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? info.Length : 0;
    }
}
