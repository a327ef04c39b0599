using System.Net.Http.Headers;
using System.Net.Http.Json;
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

    private static HttpClient Client(FieldlineProcess process)
    {
        var client = new HttpClient { BaseAddress = process.HttpUrl };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        return client;
    }
}
