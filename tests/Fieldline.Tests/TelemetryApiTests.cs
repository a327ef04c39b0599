using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fieldline.Core.Telemetry;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests;

public sealed class TelemetryApiTests
{
    private static readonly long s_start = new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    [Fact]
    public async Task The_latest_value_of_each_metric_is_returned()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("th-1");
        await env.Telemetry.AppendAsync(new TelemetryPoint[]
        {
            new("th-1", "temperature", s_start, 20.5, "°C"),
            new("th-1", "temperature", s_start + 1000, 21.0, "°C"),
            new("th-1", "humidity", s_start, 40),
        }, default);

        var latest = (await env.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/th-1/telemetry/latest"))!;

        Assert.Equal(2, latest.Count);
        var temperature = latest.Single(v => (string?)v!["metric"] == "temperature")!;
        Assert.Equal(21.0, (double)temperature["value"]!);
        Assert.Equal("°C", (string?)temperature["unit"]);
        Assert.Equal("2025-03-01T12:00:01Z", (string?)temperature["timestamp"]);
    }

    [Fact]
    public async Task Raw_points_are_paged_in_time_order_with_iso_or_unix_bounds()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("th-2");
        await env.Telemetry.AppendAsync(Enumerable.Range(0, 25).Select(i => new TelemetryPoint("th-2", "temperature", s_start + (i * 1000), i)).ToArray(), default);

        var timestamps = new List<long>();
        string? cursor = null;
        do
        {
            var url = $"/api/v1/devices/th-2/telemetry/temperature?from=2025-03-01T12:00:00Z&to={s_start + 20_000}&limit=8" + (cursor is null ? "" : "&cursor=" + cursor);
            var page = (await env.Client.GetFromJsonAsync<JsonObject>(url))!;
            timestamps.AddRange(page["points"]!.AsArray().Select(p => (long)p!["timestamp"]!));
            cursor = (string?)page["next_cursor"];
        }
        while (cursor is not null);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => s_start + (i * 1000)), timestamps);
    }

    [Fact]
    public async Task Aggregates_are_returned_per_interval()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("th-3");
        await env.Telemetry.AppendAsync(new TelemetryPoint[]
        {
            new("th-3", "temperature", s_start, 10),
            new("th-3", "temperature", s_start + 30_000, 20),
            new("th-3", "temperature", s_start + 60_000, 30),
        }, default);

        var buckets = (await env.Client.GetFromJsonAsync<JsonArray>($"/api/v1/devices/th-3/telemetry/temperature/aggregate?from={s_start}&to={s_start + 120_000}&interval=1m"))!;

        Assert.Equal(2, buckets.Count);
        Assert.Equal(s_start, (long)buckets[0]!["start"]!);
        Assert.Equal(2, (long)buckets[0]!["count"]!);
        Assert.Equal(15, (double)buckets[0]!["mean"]!);
        Assert.Equal(10, (double)buckets[0]!["min"]!);
        Assert.Equal(20, (double)buckets[0]!["max"]!);
        Assert.Equal(5, (double)buckets[0]!["stddev"]!);
    }

    [Theory]
    [InlineData("interval=1s&from=0&to=86400000000", "interval")]
    [InlineData("interval=1ms&from=-9223372036854775808&to=9223372036854775807", "interval")]
    [InlineData("interval=fortnight", "interval")]
    [InlineData("interval=0m", "interval")]
    [InlineData("from=yesterday", "from")]
    [InlineData("from=2000&to=1000", "from")]
    public async Task An_invalid_aggregate_query_is_a_validation_problem(string query, string field)
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("th-4");

        using var response = await env.Client.GetAsync("/api/v1/devices/th-4/telemetry/temperature/aggregate?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.NotNull(problem["errors"]![field]);
    }

    [Theory]
    [InlineData("/api/v1/devices/ghost/telemetry/latest")]
    [InlineData("/api/v1/devices/ghost/telemetry/temperature")]
    [InlineData("/api/v1/devices/ghost/telemetry/temperature/aggregate")]
    public async Task Telemetry_of_an_unknown_device_is_not_found(string path)
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.GetAsync(path);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("1m", 60_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1d", 86_400_000)]
    [InlineData("250ms", 250)]
    public void Intervals_are_parsed_to_milliseconds(string text, long expected)
    {
        Assert.True(Apis.TelemetryApi.TryParseInterval(text, out var ms));
        Assert.Equal(expected, ms);
    }

    [Fact]
    public async Task The_live_stream_sends_each_message_of_the_device_once_it_is_durable_and_nothing_of_other_devices()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("live-api-1"))["token"]!;
        var other = (string)(await env.RegisterAsync("live-api-2"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "live-api-1", token);
        await using var neighbour = await DeviceMqttClient.ConnectAsync(env, "live-api-2", other);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await using var stream = await SseReader.OpenAsync(env, "/api/v1/devices/live-api-1/telemetry/live", null, timeout.Token);

        await neighbour.PublishAsync("sensor/live-api-2/telemetry", """{"type":"temperature","value":99}""");
        await device.PublishAsync("sensor/live-api-1/telemetry", """[{"type":"temperature","value":21.5,"unit":"°C","timestamp":1767225600},{"type":"humidity","value":40,"timestamp":1767225600}]""");
        await device.PublishAsync("sensor/live-api-1/telemetry", """{"type":"temperature","value":22}""");
        var events = await stream.ReadAsync(2, timeout.Token);
        var stored = await env.Telemetry.GetLatestAsync("live-api-1", default);

        Assert.All(events, e => Assert.Equal("telemetry", e.Type));
        var first = events[0].Data["points"]!.AsArray();
        Assert.Equal(2, first.Count);
        Assert.Equal("temperature", (string?)first[0]!["metric"]);
        Assert.Equal(21.5, (double)first[0]!["value"]!);
        Assert.Equal("°C", (string?)first[0]!["unit"]);
        Assert.Equal("2026-01-01T00:00:00.000Z", (string?)first[0]!["timestamp"]);
        Assert.Equal("humidity", (string?)first[1]!["metric"]);
        Assert.Equal(22, (double)events[1].Data["points"]![0]!["value"]!);
        Assert.Equal(2, stored.Count); // the answer came after the write
    }

    [Fact]
    public async Task The_live_stream_of_an_unknown_device_is_not_found()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.GetAsync("/api/v1/devices/nobody/telemetry/live");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
