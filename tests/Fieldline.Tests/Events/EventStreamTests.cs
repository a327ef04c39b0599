using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Events;

/// <summary>The event stream over Server-Sent Events, read with a plain HttpClient as a browser's EventSource would.</summary>
public sealed class EventStreamTests
{
    [Fact]
    public async Task The_stream_carries_a_devices_events_filtered_and_resumes_with_Last_Event_ID()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using (var stream = await SseReader.OpenAsync(env, "/api/v1/events?device=ev-1", null, cancel.Token))
        {
            var token = (string)(await env.RegisterAsync("ev-1", "actuator"))["token"]!;
            await env.RegisterAsync("ev-other");
            using (var patch = await env.Client.PatchAsync("/api/v1/devices/ev-1/shadow", new StringContent("""{"state":{"desired":{"on":true}}}""", Encoding.UTF8, "application/json")))
            {
                patch.EnsureSuccessStatusCode();
            }

            await using (var device = await DeviceMqttClient.ConnectAsync(env, "ev-1", token))
            {
                await device.SubscribeAsync("device/ev-1/command");
                using var command = await env.Client.PostAsync("/api/v1/devices/ev-1/commands", new StringContent("""{"type":"blink"}""", Encoding.UTF8, "application/json"));
                command.EnsureSuccessStatusCode();
                var commandId = (string)JsonNode.Parse(await command.Content.ReadAsStringAsync())!["command_id"]!;
                await device.NextAsync("device/ev-1/command");

                // Delivered (the PUBACK recorded) before the device disconnects, so that the order of the events is fixed.
                await Poll.UntilAsync(
                    async () => (string?)JsonNode.Parse(await env.Client.GetStringAsync($"/api/v1/devices/ev-1/commands/{commandId}"))!["state"],
                    state => state == "delivered",
                    "the command delivered");
            }

            var events = await stream.ReadAsync(6, cancel.Token);
            Assert.Equal(
                ["DeviceRegistered", "ShadowUpdated", "DeviceConnected", "CommandStateChanged", "CommandStateChanged", "DeviceDisconnected"],
                events.Select(e => e.Type));
            Assert.All(events, e => Assert.Equal("ev-1", (string?)e.Data["payload"]!["device_id"]));
            Assert.Equal("pending", (string?)events[3].Data["payload"]!["state"]);
            Assert.Equal("delivered", (string?)events[4].Data["payload"]!["state"]);
            Assert.Equal("clean", (string?)events[5].Data["payload"]!["reason"]);
            Assert.Equal(events[0].Id, (string?)events[0].Data["event_id"]);

            // A client that saw only the first event gets the rest again, filtered by type.
            await using var resumed = await SseReader.OpenAsync(env, "/api/v1/events?device=ev-1&type=ShadowUpdated,DeviceConnected", events[0].Id, cancel.Token);
            var missed = await resumed.ReadAsync(2, cancel.Token);
            Assert.Equal(["ShadowUpdated", "DeviceConnected"], missed.Select(e => e.Type));
            Assert.Equal([events[1].Id, events[2].Id], missed.Select(e => e.Id));
        }
    }

    [Fact]
    public async Task Telemetry_from_mosquitto_pub_becomes_one_DataReceived_event_per_window_with_the_latest_values()
    {
        await using var env = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Events:DataReceivedWindowSeconds"] = "1" });
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var token = (string)(await env.RegisterAsync("dr-1"))["token"]!;
        await using var stream = await SseReader.OpenAsync(env, "/api/v1/events?type=DataReceived", null, cancel.Token);
        var port = env.Application.MqttPort!.Value.ToString(CultureInfo.InvariantCulture);

        // Both messages in one connection, so that one window holds both (the window is 1 s, the run a few ms).
        var publish = await ExternalProcess.RunAsync(
            "mosquitto_pub",
            ["-h", "127.0.0.1", "-p", port, "-i", "dr-1", "-u", "dr-1", "-P", token, "-q", "1", "-t", "sensor/dr-1/telemetry", "-l"],
            standardInput: """
                {"ts":1767225600000,"values":{"temperature":21.5,"humidity":40}}
                {"ts":1767225601000,"values":{"temperature":22.0}}

                """);
        Assert.True(publish.ExitCode == 0, publish.ToString());

        var events = new List<SseEvent>();
        while (events.Sum(e => (long)e.Data["payload"]!["messages"]!) < 2)
        {
            events.AddRange(await stream.ReadAsync(1, cancel.Token));
        }

        Assert.All(events, e => Assert.Equal("dr-1", (string?)e.Data["payload"]!["device_id"]));
        Assert.Equal(3, events.Sum(e => (long)e.Data["payload"]!["points"]!));
        var last = events[^1].Data["payload"]!;
        Assert.Equal(22.0, (double)last["metrics"]!["temperature"]!["value"]!);
        Assert.Equal("2026-01-01T00:00:01.000Z", (string?)last["last_timestamp"]);
    }

    [Fact]
    public async Task An_unknown_type_or_a_bad_Last_Event_ID_gets_400_and_the_stream_needs_the_admin_key()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var unknown = await env.Client.GetAsync("/api/v1/events?type=Nonsense");
        using var badId = new HttpRequestMessage(HttpMethod.Get, "/api/v1/events");
        badId.Headers.TryAddWithoutValidation("Last-Event-ID", "abc");
        using var badIdResponse = await env.Client.SendAsync(badId);
        using var anonymous = new HttpClient { BaseAddress = env.Client.BaseAddress };
        using var unauthenticated = await anonymous.GetAsync("/api/v1/events");

        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badIdResponse.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, unauthenticated.StatusCode);
    }
}
