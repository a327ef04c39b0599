using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests;

/// <summary>/api/v1/system/stats: device counts, broker and CoAP figures, and messages per second, as JSON and as a stream.</summary>
public sealed class SystemApiTests
{
    [Fact]
    public async Task The_stats_count_devices_by_status_and_type_and_show_the_broker()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("stats-1"))["token"]!;
        await env.RegisterAsync("stats-2", "gateway");
        await using var device = await DeviceMqttClient.ConnectAsync(env, "stats-1", token);
        await device.PublishAsync("sensor/stats-1/telemetry", """{"type":"temperature","value":21}""");

        var stats = await Poll.UntilAsync(
            async () => (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/system/stats"))!,
            s => (long)s["devices"]!["by_status"]!["online"]! == 1,
            "the device counted online (counts are kept up to 5 s)",
            TimeSpan.FromSeconds(20));

        Assert.Equal(2, (long)stats["devices"]!["total"]!);
        Assert.Equal(1, (long)stats["devices"]!["by_status"]!["offline"]!);
        Assert.Equal(0, (long)stats["devices"]!["by_status"]!["maintenance"]!);
        Assert.Equal(1, (long)stats["devices"]!["by_type"]!["gateway"]!);
        Assert.Equal(1, (int)stats["mqtt"]!["connections"]!);
        Assert.True((long)stats["mqtt"]!["messages_received"]! >= 1);
        Assert.True((bool)stats["coap"]!["enabled"]!);
        Assert.Equal(1, (int)stats["traffic"]!["interval_seconds"]!);
        Assert.NotNull(stats["traffic"]!["samples"]!.AsArray());
    }

    [Fact]
    public async Task The_stats_stream_sends_a_snapshot_every_second_with_only_the_new_traffic_samples()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var stream = await SseReader.OpenAsync(env, "/api/v1/system/stats/stream", null, timeout.Token);

        var events = await stream.ReadAsync(4, timeout.Token);

        Assert.All(events, e => Assert.Equal("stats", e.Type));
        var times = events.SelectMany(e => e.Data["traffic"]!["samples"]!.AsArray().Select(s => (long)s!["time"]!)).ToList();
        Assert.NotEmpty(times);
        Assert.Equal(times.Distinct().Order(), times); // each sample once, oldest first
    }

    [Fact]
    public async Task The_stats_need_the_admin_key()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = new HttpClient { BaseAddress = env.Application.HttpUrl };

        using var response = await anonymous.GetAsync("/api/v1/system/stats");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task An_open_stream_ends_when_the_host_stops_instead_of_holding_up_the_shutdown()
    {
        var env = await TestEnvironment.StartAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var stream = await SseReader.OpenAsync(env, "/api/v1/system/stats/stream", null, timeout.Token);
        await stream.ReadAsync(1, timeout.Token);

        var stopping = env.DisposeAsync().AsTask();
        var ended = await stream.ReadToEndAsync(timeout.Token);
        await stopping;

        Assert.True(ended, "expected the stream to end when the host stopped");
        Assert.False(timeout.IsCancellationRequested, "the stream did not end within 60 s of the stop");
    }
}
