using Fieldline.Core.Devices;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Storage.Sqlite.Tests;

/// <summary>Certificate fingerprints in the registry, and the schema migration that added them.</summary>
public sealed class DeviceCertificateRegistryTests : IDisposable
{
    private const string FingerprintA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string FingerprintB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fieldline-registry-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dataDir, recursive: true);
    }

    [Fact]
    public async Task A_device_is_found_by_its_certificate_fingerprint_and_a_fingerprint_belongs_to_one_device()
    {
        using var database = await OpenAsync();
        var registry = new SqliteDeviceRegistry(database, _time);
        await registry.CreateAsync(NewDevice("dev-1") with { CertificateFingerprint = FingerprintA }, DeviceTokens.Hash("t"), default);
        await registry.CreateAsync(NewDevice("dev-2"), DeviceTokens.Hash("t"), default);

        var found = await registry.FindByCertificateFingerprintAsync(FingerprintA, default);
        var notFound = await registry.FindByCertificateFingerprintAsync(FingerprintB, default);
        var duplicateCreate = await registry.CreateAsync(NewDevice("dev-3") with { CertificateFingerprint = FingerprintA }, DeviceTokens.Hash("t"), default);
        var duplicateUpdate = await registry.UpdateAsync(NewDevice("dev-2") with { CertificateFingerprint = FingerprintA }, default);
        var update = await registry.UpdateAsync(NewDevice("dev-2") with { CertificateFingerprint = FingerprintB }, default);

        Assert.Equal("dev-1", found?.DeviceId);
        Assert.Null(notFound);
        Assert.Equal(RegistryWriteResult.CertificateInUse, duplicateCreate);
        Assert.Equal(RegistryWriteResult.CertificateInUse, duplicateUpdate);
        Assert.Equal(RegistryWriteResult.Ok, update);
        Assert.Null(await registry.GetAsync("dev-3", default));
        Assert.Equal(FingerprintB, (await registry.GetAsync("dev-2", default))?.CertificateFingerprint);
        Assert.Equal("dev-2", (await registry.FindByCertificateFingerprintAsync(FingerprintB, default))?.DeviceId);
    }

    [Fact]
    public async Task A_version_1_registry_gains_the_certificate_column_and_keeps_its_devices()
    {
        Directory.CreateDirectory(_dataDir);
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(_dataDir, SqliteRegistryDatabase.FileName)}"))
        {
            await connection.OpenAsync();
            await using var create = connection.CreateCommand();

            // The schema of version 1, as released.
            create.CommandText = """
                CREATE TABLE devices (
                    device_id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, model TEXT,
                    firmware_version TEXT, status TEXT NOT NULL, location TEXT, last_seen INTEGER,
                    registered_at INTEGER NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', token_hash BLOB NOT NULL);
                CREATE INDEX ix_devices_type_status ON devices (type, status, device_id);
                CREATE TABLE device_status_history (device_id TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL);
                CREATE INDEX ix_device_status_history_device ON device_status_history (device_id, at);
                CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
                INSERT INTO devices (device_id, name, type, status, registered_at, token_hash) VALUES ('old-1', 'Old', 'sensor', 'offline', 1740830400000, x'00');
                PRAGMA user_version = 1;
                """;
            await create.ExecuteNonQueryAsync();
        }

        SqliteConnection.ClearAllPools();
        using var database = await OpenAsync();
        var registry = new SqliteDeviceRegistry(database, _time);
        var old = await registry.GetAsync("old-1", default);
        var update = await registry.UpdateAsync(old! with { CertificateFingerprint = FingerprintA }, default);

        Assert.Equal("Old", old!.Name);
        Assert.Null(old.CertificateFingerprint);
        Assert.Equal(RegistryWriteResult.Ok, update);
        Assert.Equal("old-1", (await registry.FindByCertificateFingerprintAsync(FingerprintA, default))?.DeviceId);
        await using var connectionAfter = new SqliteConnection($"Data Source={database.FilePath}");
        await connectionAfter.OpenAsync();
        await using var version = connectionAfter.CreateCommand();
        version.CommandText = "PRAGMA user_version";
        Assert.Equal(7L, await version.ExecuteScalarAsync());

        // Opening again changes nothing.
        using var reopened = await OpenAsync();
        Assert.Equal(FingerprintA, (await new SqliteDeviceRegistry(reopened, _time).GetAsync("old-1", default))?.CertificateFingerprint);
    }

    private async Task<SqliteRegistryDatabase> OpenAsync()
    {
        var database = new SqliteRegistryDatabase(_dataDir);
        await database.InitializeAsync(default);
        return database;
    }

    private Device NewDevice(string id) => new()
    {
        DeviceId = id,
        Name = "Device " + id,
        Type = DeviceType.Sensor,
        RegisteredAt = _time.GetUtcNow(),
    };
}
