using System.Text;
using Fieldline.Core.Devices;
using Fieldline.Core.ServiceAccounts;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Storage.Sqlite.Tests;

public sealed class SqliteServiceAccountStoreTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    // A low iteration count keeps these storage tests fast; the stored count is what verification uses.
    private static readonly PasswordHash Password = ServiceAccountPasswords.Hash("the first password", iterations: 1000);

    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fieldline-accounts-" + Guid.NewGuid().ToString("N"));
    private SqliteRegistryDatabase _database = null!;
    private SqliteServiceAccountStore _store = null!;
    private SqliteDeviceRegistry _devices = null!;

    public async Task InitializeAsync()
    {
        _database = new SqliteRegistryDatabase(_dataDir);
        await _database.InitializeAsync(CancellationToken.None);
        _store = new SqliteServiceAccountStore(_database);
        _devices = new SqliteDeviceRegistry(_database, new FakeTimeProvider(Now));
    }

    public Task DisposeAsync()
    {
        _database.Dispose();
        Directory.Delete(_dataDir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_created_account_reads_back_with_its_rules_and_password_hash()
    {
        var account = NewAccount("grafana") with
        {
            Description = "Dashboards",
            Rules = [new TopicRule(TopicAction.Subscribe, "sensor/+/telemetry"), new TopicRule(TopicAction.All, "clients/{clientid}/#"), new TopicRule(TopicAction.Publish, "x")],
        };

        Assert.Equal(RegistryWriteResult.Ok, await _store.CreateAsync(account, Password, default));

        var read = await _store.GetAsync("grafana", default);
        Assert.NotNull(read);
        Assert.Equal("Dashboards", read.Description);
        Assert.Equal(account.Rules, read.Rules);
        Assert.Equal(Now, read.CreatedAt);
        var credentials = await _store.GetCredentialsAsync("grafana", default);
        Assert.NotNull(credentials);
        Assert.Equal(Password.Hash, credentials.Password.Hash);
        Assert.Equal(Password.Salt, credentials.Password.Salt);
        Assert.True(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("the first password"), credentials.Password));
        Assert.Null(await _store.GetCredentialsAsync("nobody", default));
    }

    [Fact]
    public async Task Creating_an_account_twice_is_a_conflict()
    {
        await _store.CreateAsync(NewAccount("dup"), Password, default);

        Assert.Equal(RegistryWriteResult.Conflict, await _store.CreateAsync(NewAccount("dup"), Password, default));
    }

    [Fact]
    public async Task A_user_name_cannot_be_a_device_id_nor_a_device_id_a_user_name()
    {
        await _devices.CreateAsync(NewDevice("shared-1"), DeviceTokens.Hash("t"), default);
        await _store.CreateAsync(NewAccount("shared-2"), Password, default);

        Assert.Equal(RegistryWriteResult.NameTaken, await _store.CreateAsync(NewAccount("shared-1"), Password, default));
        Assert.Equal(RegistryWriteResult.NameTaken, await _devices.CreateAsync(NewDevice("shared-2"), DeviceTokens.Hash("t"), default));
        Assert.Null(await _store.GetAsync("shared-1", default));
        Assert.Null(await _devices.GetAsync("shared-2", default));
    }

    [Fact]
    public async Task Concurrent_creations_of_one_name_as_device_and_account_leave_exactly_one()
    {
        for (var i = 0; i < 20; i++)
        {
            var name = $"race-{i}";
            var device = Task.Run(() => _devices.CreateAsync(NewDevice(name), DeviceTokens.Hash("t"), default));
            var account = Task.Run(() => _store.CreateAsync(NewAccount(name), Password, default));
            var results = await Task.WhenAll(device, account);

            Assert.Equal(1, results.Count(r => r == RegistryWriteResult.Ok));
            Assert.Equal(1, results.Count(r => r == RegistryWriteResult.NameTaken));
        }
    }

    [Fact]
    public async Task Paging_visits_every_account_once_in_user_name_order()
    {
        for (var i = 0; i < 23; i++)
        {
            await _store.CreateAsync(NewAccount($"svc-{i:D2}"), Password, default);
        }

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _store.ListAsync(10, cursor, default);
            Assert.True(page.Items.Count <= 10);
            seen.AddRange(page.Items.Select(a => a.Username));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        Assert.Equal(Enumerable.Range(0, 23).Select(i => $"svc-{i:D2}"), seen);
    }

    [Fact]
    public async Task Updates_replace_rules_and_description_and_a_new_password_replaces_the_old()
    {
        await _store.CreateAsync(NewAccount("ops"), Password, default);
        var updated = NewAccount("ops") with { Description = "Operators", Rules = [new TopicRule(TopicAction.All, "#")], UpdatedAt = Now.AddHours(1) };

        Assert.Equal(RegistryWriteResult.Ok, await _store.UpdateAsync(updated, default));
        var newPassword = ServiceAccountPasswords.Hash("the second password", iterations: 1000);
        Assert.Equal(RegistryWriteResult.Ok, await _store.SetPasswordAsync("ops", newPassword, Now.AddHours(2), default));

        var credentials = await _store.GetCredentialsAsync("ops", default);
        Assert.Equal("Operators", credentials!.Account.Description);
        Assert.Equal([new TopicRule(TopicAction.All, "#")], credentials.Account.Rules);
        Assert.Equal(Now.AddHours(2), credentials.Account.UpdatedAt);
        Assert.Equal(Now, credentials.Account.CreatedAt);
        Assert.False(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("the first password"), credentials.Password));
        Assert.True(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("the second password"), credentials.Password));
    }

    [Fact]
    public async Task Writes_to_an_unknown_account_are_not_found_and_a_deleted_account_is_gone()
    {
        Assert.Equal(RegistryWriteResult.NotFound, await _store.UpdateAsync(NewAccount("nope"), default));
        Assert.Equal(RegistryWriteResult.NotFound, await _store.SetPasswordAsync("nope", Password, Now, default));
        Assert.Equal(RegistryWriteResult.NotFound, await _store.DeleteAsync("nope", default));

        await _store.CreateAsync(NewAccount("gone"), Password, default);
        Assert.Equal(RegistryWriteResult.Ok, await _store.DeleteAsync("gone", default));
        Assert.Null(await _store.GetAsync("gone", default));
        Assert.Equal(RegistryWriteResult.Ok, await _devices.CreateAsync(NewDevice("gone"), DeviceTokens.Hash("t"), default));
    }

    [Fact]
    public async Task A_version_1_registry_is_upgraded_in_place_and_keeps_its_devices()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "fieldline-v1-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        try
        {
            // The schema as version 1 wrote it, with one device in it.
            var file = Path.Combine(dataDir, SqliteRegistryDatabase.FileName);
            await using (var connection = new SqliteConnection($"Data Source={file};Pooling=False"))
            {
                await connection.OpenAsync();
                await using var create = connection.CreateCommand();
                create.CommandText = """
                    CREATE TABLE devices (
                        device_id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, model TEXT,
                        firmware_version TEXT, status TEXT NOT NULL, location TEXT, last_seen INTEGER,
                        registered_at INTEGER NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', token_hash BLOB NOT NULL);
                    CREATE INDEX ix_devices_type_status ON devices (type, status, device_id);
                    CREATE TABLE device_status_history (device_id TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL);
                    CREATE INDEX ix_device_status_history_device ON device_status_history (device_id, at);
                    CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
                    INSERT INTO devices (device_id, name, type, status, registered_at, token_hash) VALUES ('old-1', 'Old', 'sensor', 'offline', 0, x'00');
                    PRAGMA user_version = 1;
                    """;
                await create.ExecuteNonQueryAsync();
            }

            using var database = new SqliteRegistryDatabase(dataDir);
            await database.InitializeAsync(default);
            var store = new SqliteServiceAccountStore(database);
            var devices = new SqliteDeviceRegistry(database, new FakeTimeProvider(Now));

            Assert.NotNull(await devices.GetAsync("old-1", default));
            Assert.Equal(RegistryWriteResult.NameTaken, await store.CreateAsync(NewAccount("old-1"), Password, default));
            Assert.Equal(RegistryWriteResult.Ok, await store.CreateAsync(NewAccount("new-svc"), Password, default));
            Assert.Equal(RegistryWriteResult.NameTaken, await devices.CreateAsync(NewDevice("new-svc"), DeviceTokens.Hash("t"), default));
            await using var check = await database.OpenConnectionAsync(default);
            await using var version = check.CreateCommand();
            version.CommandText = "PRAGMA user_version;";
            Assert.Equal(7L, (long)(await version.ExecuteScalarAsync())!);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static ServiceAccount NewAccount(string username) => new() { Username = username, CreatedAt = Now, UpdatedAt = Now };

    private static Device NewDevice(string id) => new() { DeviceId = id, Name = id, Type = DeviceType.Sensor, RegisteredAt = Now };
}
