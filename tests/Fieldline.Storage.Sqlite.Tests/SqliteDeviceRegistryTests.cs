using Fieldline.Core.Devices;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Storage.Sqlite.Tests;

public sealed class SqliteDeviceRegistryTests : IAsyncLifetime
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fieldline-registry-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private SqliteRegistryDatabase _database = null!;
    private SqliteDeviceRegistry _registry = null!;

    public async Task InitializeAsync()
    {
        _database = new SqliteRegistryDatabase(_dataDir);
        await _database.InitializeAsync(CancellationToken.None);
        _registry = new SqliteDeviceRegistry(_database, _time);
    }

    public Task DisposeAsync()
    {
        _database.Dispose();
        Directory.Delete(_dataDir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_created_device_reads_back_with_all_fields()
    {
        var device = NewDevice("dev-1") with
        {
            Model = "TH-100",
            FirmwareVersion = "1.2.3",
            Location = "Hall A",
            Metadata = new Dictionary<string, string> { ["floor"] = "2" },
        };

        Assert.Equal(RegistryWriteResult.Ok, await _registry.CreateAsync(device, DeviceTokens.Hash("t"), default));

        var read = await _registry.GetAsync("dev-1", default);
        Assert.NotNull(read);
        Assert.Equal(device.DeviceId, read.DeviceId);
        Assert.Equal("TH-100", read.Model);
        Assert.Equal("1.2.3", read.FirmwareVersion);
        Assert.Equal("Hall A", read.Location);
        Assert.Equal(DeviceStatus.Offline, read.Status);
        Assert.Equal(device.RegisteredAt, read.RegisteredAt);
        Assert.Equal("2", read.Metadata["floor"]);
    }

    [Fact]
    public async Task Creating_a_device_twice_is_a_conflict()
    {
        await _registry.CreateAsync(NewDevice("dup"), DeviceTokens.Hash("a"), default);
        Assert.Equal(RegistryWriteResult.Conflict, await _registry.CreateAsync(NewDevice("dup"), DeviceTokens.Hash("b"), default));
    }

    [Fact]
    public async Task Paging_visits_every_device_once_in_device_id_order()
    {
        for (var i = 0; i < 57; i++)
        {
            var type = i % 3 == 0 ? DeviceType.Gateway : DeviceType.Sensor;
            await _registry.CreateAsync(NewDevice($"d{i:D3}") with { Type = type }, DeviceTokens.Hash("t"), default);
        }

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _registry.ListAsync(new DeviceQuery(DeviceType.Sensor, null, 10, cursor), default);
            Assert.True(page.Items.Count <= 10);
            seen.AddRange(page.Items.Select(d => d.DeviceId));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        var expected = Enumerable.Range(0, 57).Where(i => i % 3 != 0).Select(i => $"d{i:D3}").ToList();
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task The_last_full_page_has_no_next_cursor()
    {
        for (var i = 0; i < 4; i++)
        {
            await _registry.CreateAsync(NewDevice($"d{i}"), DeviceTokens.Hash("t"), default);
        }

        var page = await _registry.ListAsync(new DeviceQuery(null, null, 4, null), default);
        Assert.Equal(4, page.Items.Count);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public async Task Listing_filters_by_status()
    {
        await _registry.CreateAsync(NewDevice("a"), DeviceTokens.Hash("t"), default);
        await _registry.CreateAsync(NewDevice("b"), DeviceTokens.Hash("t"), default);
        await _registry.SetConnectionStatusAsync("b", DeviceStatus.Online, _time.GetUtcNow(), default);

        var page = await _registry.ListAsync(new DeviceQuery(null, DeviceStatus.Online, 100, null), default);
        Assert.Equal(["b"], page.Items.Select(d => d.DeviceId));
    }

    [Fact]
    public async Task A_device_in_maintenance_stays_in_maintenance_when_it_connects()
    {
        var device = NewDevice("m1");
        await _registry.CreateAsync(device, DeviceTokens.Hash("t"), default);
        await _registry.UpdateAsync(device with { Status = DeviceStatus.Maintenance }, default);

        var at = _time.GetUtcNow().AddMinutes(5);
        await _registry.SetConnectionStatusAsync("m1", DeviceStatus.Online, at, default);

        var read = await _registry.GetAsync("m1", default);
        Assert.Equal(DeviceStatus.Maintenance, read!.Status);
        Assert.Equal(at, read.LastSeen);
    }

    [Fact]
    public async Task Status_changes_are_kept_newest_first()
    {
        var device = NewDevice("h1");
        await _registry.CreateAsync(device, DeviceTokens.Hash("t"), default);
        _time.Advance(TimeSpan.FromSeconds(1));
        await _registry.SetConnectionStatusAsync("h1", DeviceStatus.Online, _time.GetUtcNow(), default);
        _time.Advance(TimeSpan.FromSeconds(1));

        // Same status again is not a change.
        await _registry.SetConnectionStatusAsync("h1", DeviceStatus.Online, _time.GetUtcNow(), default);
        _time.Advance(TimeSpan.FromSeconds(1));
        await _registry.UpdateAsync(device with { Status = DeviceStatus.Error }, default);

        var history = await _registry.GetStatusHistoryAsync("h1", 10, default);
        Assert.Equal([DeviceStatus.Error, DeviceStatus.Online, DeviceStatus.Offline], history.Select(h => h.Status));
        Assert.Equal(_time.GetUtcNow(), history[0].At);

        var latest = await _registry.GetStatusHistoryAsync("h1", 1, default);
        Assert.Single(latest);
    }

    [Fact]
    public async Task Deleting_a_device_removes_it_and_its_history()
    {
        await _registry.CreateAsync(NewDevice("x"), DeviceTokens.Hash("t"), default);

        Assert.Equal(RegistryWriteResult.Ok, await _registry.DeleteAsync("x", default));
        Assert.Null(await _registry.GetAsync("x", default));
        Assert.Null(await _registry.GetCredentialsAsync("x", default));
        Assert.Empty(await _registry.GetStatusHistoryAsync("x", 10, default));
        Assert.Equal(RegistryWriteResult.NotFound, await _registry.DeleteAsync("x", default));
    }

    [Fact]
    public async Task Updating_an_unknown_device_is_not_found()
    {
        Assert.Equal(RegistryWriteResult.NotFound, await _registry.UpdateAsync(NewDevice("nope"), default));
        Assert.Equal(RegistryWriteResult.NotFound, await _registry.SetTokenHashAsync("nope", DeviceTokens.Hash("t"), default));
    }

    [Fact]
    public async Task A_new_token_hash_replaces_the_old_one()
    {
        await _registry.CreateAsync(NewDevice("k"), DeviceTokens.Hash("old"), default);
        await _registry.SetTokenHashAsync("k", DeviceTokens.Hash("new"), default);

        var credentials = await _registry.GetCredentialsAsync("k", default);
        Assert.True(DeviceTokens.Verify("new"u8, credentials!.TokenHash));
        Assert.False(DeviceTokens.Verify("old"u8, credentials.TokenHash));
    }

    [Fact]
    public async Task A_device_is_found_by_its_current_token_hash_only()
    {
        await _registry.CreateAsync(NewDevice("k"), DeviceTokens.Hash("old"), default);
        await _registry.CreateAsync(NewDevice("other"), DeviceTokens.Hash("other"), default);
        var before = await _registry.FindByTokenHashAsync(DeviceTokens.Hash("old"), default);
        await _registry.SetTokenHashAsync("k", DeviceTokens.Hash("new"), default);

        Assert.Equal("k", before?.DeviceId);
        Assert.Null(await _registry.FindByTokenHashAsync(DeviceTokens.Hash("old"), default));
        Assert.Equal("k", (await _registry.FindByTokenHashAsync(DeviceTokens.Hash("new"), default))?.DeviceId);
        Assert.Equal(DeviceStatus.Offline, (await _registry.FindByTokenHashAsync(DeviceTokens.Hash("new"), default))?.Status);
    }

    [Fact]
    public async Task An_id_prefix_lists_only_the_ids_that_start_with_it_in_order_and_in_pages()
    {
        foreach (var id in new[] { "th-1", "th-10", "th-2", "thx", "ti", "t" })
        {
            await _registry.CreateAsync(NewDevice(id), DeviceTokens.Hash("t"), default);
        }

        await _registry.CreateAsync(NewDevice("th-3") with { Type = DeviceType.Gateway }, DeviceTokens.Hash("t"), default);

        var first = await _registry.ListAsync(new DeviceQuery(null, null, 2, null, "th-"), default);
        var second = await _registry.ListAsync(new DeviceQuery(null, null, 2, first.NextCursor, "th-"), default);
        var sensors = await _registry.ListAsync(new DeviceQuery(DeviceType.Sensor, null, 10, null, "th-"), default);

        Assert.Equal(["th-1", "th-10"], first.Items.Select(d => d.DeviceId));
        Assert.Equal(["th-2", "th-3"], second.Items.Select(d => d.DeviceId));
        Assert.Null(second.NextCursor);
        Assert.Equal(["th-1", "th-10", "th-2"], sensors.Items.Select(d => d.DeviceId));
    }

    [Theory]
    [InlineData(DeviceOrder.Name, false)]
    [InlineData(DeviceOrder.Name, true)]
    [InlineData(DeviceOrder.LastSeen, false)]
    [InlineData(DeviceOrder.LastSeen, true)]
    [InlineData(DeviceOrder.Id, true)]
    public async Task Paging_in_any_order_visits_every_device_once_with_ties_broken_by_id(DeviceOrder order, bool descending)
    {
        // Names and last_seen values repeat, and some devices were never seen: the id breaks every tie.
        var devices = Enumerable.Range(0, 23).Select(i => NewDevice($"d-{i:D2}") with
        {
            Name = $"name-{i % 4}",
            LastSeen = i % 5 == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + (i % 3 * 1000)),
        }).ToList();
        foreach (var device in devices)
        {
            await _registry.CreateAsync(device, DeviceTokens.Hash("t"), default);
        }

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _registry.ListAsync(new DeviceQuery(null, null, 5, cursor, Order: order, Descending: descending), default);
            seen.AddRange(page.Items.Select(d => d.DeviceId));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        IEnumerable<Device> expected = order switch
        {
            DeviceOrder.Name => devices.OrderBy(d => d.Name, StringComparer.Ordinal),
            DeviceOrder.LastSeen => devices.OrderBy(d => d.LastSeen?.ToUnixTimeMilliseconds() ?? -1),
            _ => devices.OrderBy(d => 0),
        };
        var ordered = ((IOrderedEnumerable<Device>)expected).ThenBy(d => d.DeviceId, StringComparer.Ordinal).Select(d => d.DeviceId).ToList();
        if (descending)
        {
            ordered.Reverse();
        }

        Assert.Equal(ordered, seen);
    }

    [Fact]
    public async Task A_search_finds_ids_by_their_start_and_names_by_any_part_ignoring_case()
    {
        await _registry.CreateAsync(NewDevice("boiler-1") with { Name = "Basement heater" }, DeviceTokens.Hash("t"), default);
        await _registry.CreateAsync(NewDevice("pump-1") with { Name = "Boiler feed pump" }, DeviceTokens.Hash("t"), default);
        await _registry.CreateAsync(NewDevice("x-boiler") with { Name = "Roof fan" }, DeviceTokens.Hash("t"), default);
        await _registry.CreateAsync(NewDevice("fan-2") with { Name = "100% fan" }, DeviceTokens.Hash("t"), default);

        var boiler = await _registry.ListAsync(new DeviceQuery(null, null, 10, null, Search: "BOILER"), default);
        var percent = await _registry.ListAsync(new DeviceQuery(null, null, 10, null, Search: "0%"), default);
        var underscore = await _registry.ListAsync(new DeviceQuery(null, null, 10, null, Search: "_"), default);

        Assert.Equal(["boiler-1", "pump-1"], boiler.Items.Select(d => d.DeviceId));
        Assert.Equal(["fan-2"], percent.Items.Select(d => d.DeviceId));
        Assert.Empty(underscore.Items);
    }

    [Theory]
    [InlineData("not base64 !")]
    [InlineData("bm8tc2VwYXJhdG9y")] // "no-separator"
    public async Task A_cursor_that_no_listing_returned_is_a_format_error(string cursor)
    {
        await Assert.ThrowsAsync<FormatException>(() => _registry.ListAsync(new DeviceQuery(null, null, 5, cursor, Order: DeviceOrder.Name), default));
    }

    [Fact]
    public async Task Counts_are_grouped_by_status_and_type()
    {
        await _registry.CreateAsync(NewDevice("s1"), DeviceTokens.Hash("t"), default);
        await _registry.CreateAsync(NewDevice("s2"), DeviceTokens.Hash("t"), default);
        await _registry.CreateAsync(NewDevice("g1") with { Type = DeviceType.Gateway }, DeviceTokens.Hash("t"), default);
        await _registry.SetConnectionStatusAsync("s2", DeviceStatus.Online, _time.GetUtcNow(), default);

        var counts = await _registry.CountAsync(default);
        Assert.Equal(1, counts[(DeviceStatus.Offline, DeviceType.Sensor)]);
        Assert.Equal(1, counts[(DeviceStatus.Online, DeviceType.Sensor)]);
        Assert.Equal(1, counts[(DeviceStatus.Offline, DeviceType.Gateway)]);
    }

    [Fact]
    public async Task Settings_survive_reopening_the_database()
    {
        await new SqliteSettingsStore(_database).SetAsync("k", [1, 2, 3], default);
        await new SqliteSettingsStore(_database).SetAsync("k", [4], default);

        using var reopened = new SqliteRegistryDatabase(_dataDir);
        await reopened.InitializeAsync(default);
        Assert.Equal([4], await new SqliteSettingsStore(reopened).GetAsync("k", default));
        Assert.Null(await new SqliteSettingsStore(reopened).GetAsync("missing", default));
    }

    [Fact]
    public async Task The_database_uses_wal_with_normal_synchronous_writes()
    {
        await using var connection = await _database.OpenConnectionAsync(default);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", await command.ExecuteScalarAsync());
        command.CommandText = "PRAGMA synchronous";
        Assert.Equal(1L, await command.ExecuteScalarAsync());
        Assert.Equal(Path.Combine(_dataDir, "fieldline.db"), _database.FilePath);
    }

    private Device NewDevice(string id) => new()
    {
        DeviceId = id,
        Name = "Device " + id,
        Type = DeviceType.Sensor,
        RegisteredAt = _time.GetUtcNow(),
    };
}
