using Fieldline.Core.Telemetry;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Storage.Sqlite.Tests.Telemetry;

/// <summary>A temporary directory with a telemetry database; removed with the test.</summary>
public sealed class StoreFixture : IAsyncDisposable
{
    private readonly List<SqliteTelemetryStore> opened = [];

    public StoreFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fieldline-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string DatabasePath => Path.Combine(Directory, "telemetry.db");

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.FromUnixTimeMilliseconds(1_732_550_000_000));

    public async Task<SqliteTelemetryStore> OpenAsync(int maxHeadPoints = 240, TimeSpan? compactionInterval = null, TimeSpan? maxHeadAge = null)
    {
        var store = new SqliteTelemetryStore(
            DatabasePath,
            Time,
            new SqliteTelemetryStoreOptions
            {
                MaxHeadPoints = maxHeadPoints,
                CompactionInterval = compactionInterval ?? TimeSpan.Zero,
                MaxHeadAge = maxHeadAge ?? TimeSpan.FromMinutes(10),
            },
            NullLogger<SqliteTelemetryStore>.Instance);
        await store.OpenAsync(CancellationToken.None);
        opened.Add(store);
        return store;
    }

    public long CountRows(string table)
    {
        using var connection = new SqliteConnection($"Data Source={DatabasePath};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)command.ExecuteScalar()!;
    }

    public static TelemetryPoint Point(long ts, double value, string device = "dev", string metric = "temp", string? unit = null) => new(device, metric, ts, value, unit);

    public static async Task<List<StoredPoint>> ReadAllAsync(ITelemetryStore store, string device, string metric, long from, long to, int pageSize)
    {
        var all = new List<StoredPoint>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await store.QueryRawAsync(device, metric, from, to, pageSize, cursor, CancellationToken.None);
            Assert.True(page.Points.Count <= pageSize, $"expected at most {pageSize} points per page, saw {page.Points.Count}");
            all.AddRange(page.Points);
            cursor = page.NextCursor;
            Assert.True(++pages < 100_000, "paging did not terminate");
        }
        while (cursor is not null);
        return all;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var store in opened)
        {
            await store.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory must not fail the test.
        }
    }
}
