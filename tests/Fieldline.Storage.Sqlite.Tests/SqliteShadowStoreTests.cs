using Fieldline.Core.Shadows;

namespace Fieldline.Storage.Sqlite.Tests;

public sealed class SqliteShadowStoreTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fieldline-shadows-" + Guid.NewGuid().ToString("N"));
    private SqliteRegistryDatabase _database = null!;
    private SqliteShadowStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = new SqliteRegistryDatabase(_dataDir);
        await _database.InitializeAsync(CancellationToken.None);
        _store = new SqliteShadowStore(_database);
    }

    public Task DisposeAsync()
    {
        _database.Dispose();
        Directory.Delete(_dataDir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_write_wins_only_against_the_version_it_read()
    {
        var none = CancellationToken.None;

        Assert.True(await _store.SaveAsync(new StoredShadow("d", 1, "{\"v\":1}", Now), 0, none));
        Assert.False(await _store.SaveAsync(new StoredShadow("d", 1, "{\"v\":\"other first\"}", Now), 0, none));
        Assert.True(await _store.SaveAsync(new StoredShadow("d", 2, "{\"v\":2}", Now.AddSeconds(1)), 1, none));
        Assert.False(await _store.SaveAsync(new StoredShadow("d", 2, "{\"v\":\"stale\"}", Now), 1, none));

        var stored = await _store.GetAsync("d", none);
        Assert.Equal(new StoredShadow("d", 2, "{\"v\":2}", Now.AddSeconds(1)), stored);
        Assert.True(await _store.DeleteAsync("d", none));
        Assert.False(await _store.DeleteAsync("d", none));
        Assert.Null(await _store.GetAsync("d", none));
    }
}
