using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests;

/// <summary>Acknowledged means durable: what was acknowledged survives kill -9.</summary>
public sealed class CrashTests
{
    private const string AdminKey = "crash-test-admin-key-0123456789";

    private long StartMs { get; set; }

    [Fact]
    public async Task Every_point_acknowledged_before_a_kill_9_is_there_after_restart()
    {
        const int messages = 3000;
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string token;
            StartMs = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();
            using (var first = await FieldlineProcess.StartAsync(dataDir, AdminKey))
            {
                using var http = Client(first);
                using var created = await http.PostAsJsonAsync("/api/v1/devices", new { device_id = "crash-1", name = "Crash", type = "sensor" });
                created.EnsureSuccessStatusCode();
                token = (await created.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();

                using var client = new MqttClientFactory().CreateMqttClient();
                await client.ConnectAsync(new MqttClientOptionsBuilder()
                    .WithTcpServer("127.0.0.1", first.MqttPort)
                    .WithClientId("crash-1")
                    .WithCredentials("crash-1", token)
                    .Build());

                // All publishes in flight at once, so that many share a group commit.
                var start = StartMs;
                var publishes = Enumerable.Range(0, messages).Select(i => client.PublishAsync(new MqttApplicationMessageBuilder()
                    .WithTopic("sensor/crash-1/telemetry")
                    .WithPayload($"{{\"ts\":{start + i},\"values\":{{\"counter\":{i}}}}}")
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                    .Build())).ToArray();
                var results = await Task.WhenAll(publishes);
                Assert.All(results, r => Assert.Equal(MqttClientPublishReasonCode.Success, r.ReasonCode));

                // Every PUBACK is in: kill the server without any chance to flush.
                first.KillHard();
            }

            using var second = await FieldlineProcess.StartAsync(dataDir, AdminKey);
            using var query = Client(second);
            var values = new List<double>();
            string? cursor = null;
            do
            {
                var page = await query.GetFromJsonAsync<JsonObject>($"/api/v1/devices/crash-1/telemetry/counter?from={StartMs}&to={StartMs + messages}&limit=1000{(cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor))}");
                values.AddRange(page!["points"]!.AsArray().Select(p => p!["value"]!.GetValue<double>()));
                cursor = page["next_cursor"]?.GetValue<string>();
            }
            while (cursor is not null);

            Assert.Equal(Enumerable.Range(0, messages).Select(i => (double)i), values);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Every_coap_telemetry_post_answered_2_04_before_a_kill_9_is_there_after_restart()
    {
        const int clients = 20;
        const int perClient = 50;
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            var start = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();
            using (var first = await FieldlineProcess.StartAsync(dataDir, AdminKey))
            {
                using var http = Client(first);
                using var created = await http.PostAsJsonAsync("/api/v1/devices", new { device_id = "crash-coap", name = "Crash", type = "sensor" });
                created.EnsureSuccessStatusCode();
                var token = (await created.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();

                // 20 devices' worth of sockets, each with its requests one after the other, so that many share a commit.
                var codes = await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
                {
                    await using var coap = new Fieldline.Coap.Client.CoapClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, first.CoapPort));
                    var answered = new List<Fieldline.Coap.Protocol.CoapCode>();
                    for (var i = 0; i < perClient; i++)
                    {
                        var n = (c * perClient) + i;
                        var response = await coap.SendAsync(Fieldline.Coap.Protocol.CoapCode.Post, $"api/v1/{token}/telemetry", System.Text.Encoding.UTF8.GetBytes($"{{\"ts\":{start + n},\"values\":{{\"counter\":{n}}}}}"));
                        answered.Add(response.Code);
                    }

                    return answered;
                }));
                Assert.All(codes.SelectMany(c => c), code => Assert.Equal(Fieldline.Coap.Protocol.CoapCode.Changed, code));

                // Every 2.04 is in: kill the server without any chance to flush.
                first.KillHard();
            }

            using var second = await FieldlineProcess.StartAsync(dataDir, AdminKey);
            using var query = Client(second);
            var values = new List<double>();
            string? cursor = null;
            do
            {
                var page = await query.GetFromJsonAsync<JsonObject>($"/api/v1/devices/crash-coap/telemetry/counter?from={start}&to={start + (clients * perClient)}&limit=1000{(cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor))}");
                values.AddRange(page!["points"]!.AsArray().Select(p => p!["value"]!.GetValue<double>()));
                cursor = page["next_cursor"]?.GetValue<string>();
            }
            while (cursor is not null);

            Assert.Equal(Enumerable.Range(0, clients * perClient).Select(i => (double)i), values);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Shadows_pending_commands_and_webhooks_acknowledged_before_a_kill_9_are_there_after_restart()
    {
        await using var receiver = await WebhookReceiver.StartAsync(failFirst: 0);
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string token, commandId, webhookId;
            using (var first = await FieldlineProcess.StartAsync(dataDir, AdminKey))
            {
                using var http = Client(first);
                using (var created = await http.PostAsJsonAsync("/api/v1/devices", new { device_id = "kill-1", name = "Kill", type = "actuator" }))
                {
                    created.EnsureSuccessStatusCode();
                    token = (await created.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();
                }

                using (var webhook = await http.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url, event_types = new[] { "DeviceDeleted" }, secret = "a-secret-that-survives-kill-9" }))
                {
                    webhook.EnsureSuccessStatusCode();
                    webhookId = (await webhook.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
                }

                using (var patch = await http.PatchAsync("/api/v1/devices/kill-1/shadow", JsonContent.Create(new { state = new { desired = new { mode = "eco", fan = new { speed = 3 } } } })))
                {
                    patch.EnsureSuccessStatusCode();
                }

                // The device reports over MQTT: the PUBACK follows the shadow write.
                await using (var device = await DeviceMqttClient.ConnectAsync(first.MqttPort, "kill-1", token))
                {
                    await device.PublishAsync("device/kill-1/shadow/update", """{"state":{"reported":{"mode":"normal","fan":{"speed":3}}}}""");
                }

                // Created while the device is offline: stays pending in the queue.
                using (var command = await http.PostAsJsonAsync("/api/v1/devices/kill-1/commands", new { type = "reboot", parameters = new { delay_s = 5 }, timeout_s = 60 }))
                {
                    command.EnsureSuccessStatusCode();
                    commandId = (await command.Content.ReadFromJsonAsync<JsonObject>())!["command_id"]!.GetValue<string>();
                }

                first.KillHard();
            }

            using var second = await FieldlineProcess.StartAsync(dataDir, AdminKey);
            using var query = Client(second);
            var shadow = (await query.GetFromJsonAsync<JsonObject>("/api/v1/devices/kill-1/shadow"))!;
            var pending = (await query.GetFromJsonAsync<JsonObject>($"/api/v1/devices/kill-1/commands/{commandId}"))!;
            var webhooks = (await query.GetFromJsonAsync<JsonObject>($"/api/v1/webhooks/{webhookId}"))!;

            Assert.Equal(2, (long)shadow["version"]!);
            Assert.Equal("""{"mode":"eco"}""", shadow["state"]!["delta"]!.ToJsonString());
            Assert.Equal("normal", (string?)shadow["state"]!["reported"]!["mode"]);
            Assert.Equal("pending", (string?)pending["state"]);
            Assert.Equal(receiver.Url, (string?)webhooks["url"]);

            // The device that comes back gets the delta and the command it missed.
            await using (var device = await DeviceMqttClient.ConnectAsync(second.MqttPort, "kill-1", token))
            {
                await device.SubscribeAsync("device/kill-1/shadow/delta");
                await device.SubscribeAsync("device/kill-1/command");
                Assert.Equal("eco", (string?)(await device.NextAsync("device/kill-1/shadow/delta"))["state"]!["mode"]);
                var command = await device.NextAsync("device/kill-1/command");
                Assert.Equal(commandId, (string?)command["command_id"]);
                Assert.Equal(5, (int)command["parameters"]!["delay_s"]!);
            }

            // The webhook still signs with its secret, read back from the encrypted store.
            using (var deleted = await query.DeleteAsync("/api/v1/devices/kill-1"))
            {
                deleted.EnsureSuccessStatusCode();
            }

            var request = (await Poll.UntilAsync(() => Task.FromResult(receiver.Requests), r => r.Count > 0, "the DeviceDeleted webhook"))[0];
            var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData("a-secret-that-survives-kill-9"u8, Encoding.UTF8.GetBytes(request.Body)));
            Assert.Equal("DeviceDeleted", request.EventType);
            Assert.Equal(expected, request.Signature);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static HttpClient Client(FieldlineProcess process)
    {
        var client = new HttpClient { BaseAddress = process.HttpUrl };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        return client;
    }
}
