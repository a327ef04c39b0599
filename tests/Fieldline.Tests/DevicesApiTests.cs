using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests;

public sealed class DevicesApiTests
{
    [Fact]
    public async Task Registering_a_device_returns_it_in_snake_case_with_its_token_and_location()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsJsonAsync("/api/v1/devices", new
        {
            device_id = "th-001",
            name = "Hall thermometer",
            type = "sensor",
            model = "TH-100",
            firmware_version = "1.0.2",
            location = "Hall A",
            metadata = new { floor = "2" },
        });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("/api/v1/devices/th-001", response.Headers.Location?.OriginalString);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("th-001", (string?)body["device_id"]);
        Assert.Equal("sensor", (string?)body["type"]);
        Assert.Equal("offline", (string?)body["status"]);
        Assert.Equal("1.0.2", (string?)body["firmware_version"]);
        Assert.Equal("2", (string?)body["metadata"]!["floor"]);
        Assert.EndsWith("Z", (string?)body["registered_at"], StringComparison.Ordinal);
        Assert.Equal(43, ((string?)body["token"])!.Length);

        var read = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/th-001"))!;
        Assert.Null(read["token"]);
        Assert.Equal("Hall thermometer", (string?)read["name"]);
        Assert.Equal((string?)body["registered_at"], (string?)read["registered_at"]);
    }

    [Fact]
    public async Task Creating_a_device_twice_is_a_conflict()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("dup-1");

        using var response = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "dup-1", name = "again", type = "sensor" });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("""{"device_id":"ok-1","name":"n","type":"toaster"}""", "type")]
    [InlineData("""{"device_id":"bad id!","name":"n","type":"sensor"}""", "device_id")]
    [InlineData("""{"device_id":"abc\n","name":"n","type":"sensor"}""", "device_id")]
    [InlineData("""{"device_id":"..","name":"n","type":"sensor"}""", "device_id")]
    [InlineData("""{"device_id":"a/b","name":"n","type":"sensor"}""", "device_id")]
    [InlineData("""{"name":"n","type":"sensor"}""", "device_id")]
    [InlineData("""{"device_id":"ok-2","type":"sensor"}""", "name")]
    public async Task An_invalid_field_is_a_validation_problem_naming_the_field(string json, string field)
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsync("/api/v1/devices", new StringContent(json, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.NotNull(problem["errors"]![field]);
    }

    [Fact]
    public async Task An_invalid_type_says_which_types_exist()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "x", name = "n", type = "toaster" });

        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("must be one of sensor, actuator, gateway", (string?)problem["errors"]!["type"]![0]);
    }

    [Fact]
    public async Task Malformed_json_is_a_bad_request_problem()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsync("/api/v1/devices", new StringContent("{\"device_id\": ", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(400, (int)problem["status"]!);
        Assert.Contains("JSON", (string?)problem["detail"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("type=toaster", "type")]
    [InlineData("status=sleeping", "status")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=1001", "limit")]
    [InlineData("cursor=%20bad", "cursor")]
    [InlineData("q=a%20b", "q")]
    [InlineData("sort=colour", "sort")]
    [InlineData("sort=-", "sort")]
    [InlineData("sort=name&cursor=bm8tc2VwYXJhdG9y", "cursor")]
    [InlineData("search=", "search")]
    public async Task An_invalid_list_query_is_a_validation_problem(string query, string field)
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.GetAsync("/api/v1/devices?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.NotNull(problem["errors"]![field]);
    }

    [Fact]
    public async Task Paging_through_250_devices_returns_each_once_in_id_order()
    {
        await using var env = await TestEnvironment.StartAsync();
        var ids = Enumerable.Range(0, 250).Select(i => $"dev-{i:D4}").ToList();
        foreach (var id in ids.AsEnumerable().Reverse())
        {
            await env.RegisterAsync(id);
        }

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?limit=100" + (cursor is null ? "" : "&cursor=" + cursor)))!;
            seen.AddRange(page["items"]!.AsArray().Select(d => (string)d!["device_id"]!));
            cursor = (string?)page["next_cursor"];
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(ids, seen);
    }

    [Fact]
    public async Task Listing_filters_by_type_and_status()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-1");
        await env.RegisterAsync("g-1", "gateway");
        await env.RegisterAsync("g-2", "gateway");
        await env.GetService<IDeviceRegistry>().SetConnectionStatusAsync("g-2", DeviceStatus.Online, DateTimeOffset.UtcNow, default);

        var gateways = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?type=gateway"))!;
        Assert.Equal(["g-1", "g-2"], gateways["items"]!.AsArray().Select(d => (string)d!["device_id"]!));

        var online = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?type=gateway&status=online"))!;
        Assert.Equal(["g-2"], online["items"]!.AsArray().Select(d => (string)d!["device_id"]!));
        Assert.Null((string?)online["next_cursor"]);

        var startingWithS = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?q=s-"))!;
        Assert.Equal(["s-1"], startingWithS["items"]!.AsArray().Select(d => (string)d!["device_id"]!));
    }

    [Fact]
    public async Task Listing_sorts_by_name_or_last_seen_pages_with_the_cursor_and_searches_ids_and_names()
    {
        await using var env = await TestEnvironment.StartAsync();
        foreach (var (id, name) in new[] { ("a-1", "Pump"), ("a-2", "Boiler"), ("a-3", "Chiller"), ("pump-2", "Valve") })
        {
            using var created = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = id, name, type = "sensor" });
            created.EnsureSuccessStatusCode();
        }

        await env.GetService<IDeviceRegistry>().SetConnectionStatusAsync("a-3", DeviceStatus.Online, DateTimeOffset.UtcNow, default);

        var first = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?sort=-name&limit=2"))!;
        var second = (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices?sort=-name&limit=2&cursor={first["next_cursor"]}"))!;
        var seen = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?sort=-last_seen&limit=1"))!;
        var pump = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices?search=pump"))!;

        static IEnumerable<string> Ids(JsonObject page) => page["items"]!.AsArray().Select(d => (string)d!["device_id"]!);
        Assert.Equal(["pump-2", "a-1"], Ids(first));
        Assert.Equal(["a-3", "a-2"], Ids(second));
        Assert.Null((string?)second["next_cursor"]);
        Assert.Equal(["a-3"], Ids(seen));
        Assert.Equal(["a-1", "pump-2"], Ids(pump));
    }

    [Fact]
    public async Task Updating_a_device_replaces_its_fields_and_records_the_status_change()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("u-1");

        using var put = await env.Client.PutAsJsonAsync("/api/v1/devices/u-1", new { name = "Renamed", type = "actuator", status = "maintenance", location = "Roof" });

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var device = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/u-1"))!;
        Assert.Equal("Renamed", (string?)device["name"]);
        Assert.Equal("actuator", (string?)device["type"]);
        Assert.Equal("maintenance", (string?)device["status"]);
        Assert.Equal("Roof", (string?)device["location"]);

        var history = (await env.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/u-1/status-history"))!;
        Assert.Equal(["maintenance", "offline"], history.Select(h => (string)h!["status"]!));
    }

    [Fact]
    public async Task An_update_with_an_unknown_status_is_a_validation_problem()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("u-2");

        using var put = await env.Client.PutAsJsonAsync("/api/v1/devices/u-2", new { name = "n", type = "sensor", status = "asleep" });

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        var problem = (await put.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.NotNull(problem["errors"]!["status"]);
    }

    [Fact]
    public async Task Patching_a_device_changes_only_the_fields_sent()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "p-1", name = "n", type = "sensor", location = "Cellar" });

        using var patch = await env.Client.PatchAsJsonAsync("/api/v1/devices/p-1", new { firmware_version = "2.0" });

        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        var device = (await patch.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("2.0", (string?)device["firmware_version"]);
        Assert.Equal("Cellar", (string?)device["location"]);
        Assert.Equal("n", (string?)device["name"]);
    }

    [Fact]
    public async Task Deleting_a_device_removes_it_and_its_telemetry()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("d-1");
        await env.Telemetry.AppendAsync(new Fieldline.Core.Telemetry.TelemetryPoint[] { new("d-1", "temperature", 1_750_000_000_000, 21) }, default);
        Assert.NotEmpty(await env.Telemetry.GetLatestAsync("d-1", default));

        using var delete = await env.Client.DeleteAsync("/api/v1/devices/d-1");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.Empty(await env.Telemetry.GetLatestAsync("d-1", default));
        using var get = await env.Client.GetAsync("/api/v1/devices/d-1");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        using var again = await env.Client.DeleteAsync("/api/v1/devices/d-1");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task An_unknown_route_is_a_not_found_problem()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.GetAsync("/api/v1/nothing-here");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("GET", "/api/v1/devices/nope")]
    [InlineData("PUT", "/api/v1/devices/nope")]
    [InlineData("POST", "/api/v1/devices/nope/token")]
    [InlineData("GET", "/api/v1/devices/nope/status-history")]
    public async Task An_unknown_device_is_a_not_found_problem(string method, string path)
    {
        await using var env = await TestEnvironment.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path)
        {
            Content = method == "PUT" ? JsonContent.Create(new { name = "n", type = "sensor" }) : null,
        };

        using var response = await env.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_token_is_shown_once_and_rotating_it_invalidates_the_old_one()
    {
        await using var env = await TestEnvironment.StartAsync();
        var created = await env.RegisterAsync("t-1");
        var firstToken = (string)created["token"]!;
        var registry = env.GetService<IDeviceRegistry>();
        var firstHash = (await registry.GetCredentialsAsync("t-1", default))!.TokenHash;
        Assert.True(DeviceTokens.Verify(Encoding.UTF8.GetBytes(firstToken), firstHash));

        using var rotate = await env.Client.PostAsync("/api/v1/devices/t-1/token", content: null);

        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var body = (await rotate.Content.ReadFromJsonAsync<JsonObject>())!;
        var secondToken = (string)body["token"]!;
        Assert.NotEqual(firstToken, secondToken);
        var hash = (await registry.GetCredentialsAsync("t-1", default))!.TokenHash;
        Assert.True(DeviceTokens.Verify(Encoding.UTF8.GetBytes(secondToken), hash));
        Assert.False(DeviceTokens.Verify(Encoding.UTF8.GetBytes(firstToken), hash));
    }
}
