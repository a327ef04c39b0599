using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Events;

/// <summary>Shadows, commands and events are counted in /metrics.</summary>
public sealed class PlatformMetricsTests
{
    [Fact]
    public async Task Shadow_updates_command_states_and_published_events_are_counted_in_metrics()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("m-1", "actuator"))["token"]!;
        using (await env.Client.PatchAsync("/api/v1/devices/m-1/shadow", Json("""{"state":{"desired":{"on":true}}}""")))
        using (await env.Client.PatchAsync("/api/v1/devices/m-1/shadow", Json("""{"state":{"reported":{"on":true}}}""")))
        {
        }

        await using (var device = await DeviceMqttClient.ConnectAsync(env, "m-1", token))
        {
            await device.SubscribeAsync("device/m-1/command");
            await device.PublishAsync("device/m-1/shadow/update", """{"state":{"reported":{"on":true}}}""");
            using var created = await env.Client.PostAsync("/api/v1/devices/m-1/commands", Json("""{"type":"blink"}"""));
            var id = (string)JsonNode.Parse(await created.Content.ReadAsStringAsync())!["command_id"]!;
            await device.NextAsync("device/m-1/command");
            await device.PublishAsync("device/m-1/response", $$"""{"command_id":"{{id}}","status":"success"}""");
        }

        var text = await Poll.UntilAsync(env.ScrapeMetricsAsync, t => t.Contains("fieldline_command_states_total{state=\"succeeded\"} 1\n", StringComparison.Ordinal), "the succeeded command counted");

        Assert.Contains("fieldline_shadow_updates_total{outcome=\"ok\",writer=\"operator\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_shadow_updates_total{outcome=\"forbidden\",writer=\"operator\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_shadow_updates_total{outcome=\"ok\",writer=\"device\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_shadow_update_duration_seconds_count{outcome=\"ok\",writer=\"device\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_command_states_total{state=\"pending\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_command_duration_seconds_count{state=\"succeeded\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_events_published_total{event_type=\"DeviceRegistered\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_events_published_total{event_type=\"ShadowUpdated\"} 2\n", text, StringComparison.Ordinal);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
