using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Commands;

/// <summary>Device → platform requests with MQTT 5 Response Topic and Correlation Data (and the 3.1.1 fallback topic).</summary>
public sealed class DeviceRequestTests
{
    [Fact]
    public async Task Time_and_ping_answer_on_the_response_topic_with_the_correlation_data()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("clock-1"))["token"]!;
        var replies = new List<MqttApplicationMessage>();
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (replies)
            {
                replies.Add(e.ApplicationMessage);
            }

            return Task.CompletedTask;
        };
        await client.ConnectAsync(MqttTestClient.Options(env, "clock-1", "clock-1", token));
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("device/clock-1/reply/#", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        foreach (var (method, correlation) in new[] { ("time", new byte[] { 1, 2, 3 }), ("ping", new byte[] { 9 }) })
        {
            var result = await client.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic($"device/clock-1/rpc/{method}")
                .WithResponseTopic($"device/clock-1/reply/{method}")
                .WithCorrelationData(correlation)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .Build());
            Assert.Equal(MqttClientPublishReasonCode.Success, result.ReasonCode);
        }

        await Poll.UntilAsync(() => Task.FromResult(Count(replies)), n => n >= 2, "two replies");
        var time = replies.Single(r => r.Topic == "device/clock-1/reply/time");
        var ping = replies.Single(r => r.Topic == "device/clock-1/reply/ping");
        var timeBody = JsonNode.Parse(Encoding.UTF8.GetString(time.Payload))!;
        Assert.Equal([1, 2, 3], time.CorrelationData);
        Assert.Equal([9], ping.CorrelationData);
        Assert.InRange((long)timeBody["time_ms"]!, before - 1000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1000);
        Assert.True((bool)JsonNode.Parse(Encoding.UTF8.GetString(ping.Payload))!["pong"]!);
    }

    [Fact]
    public async Task A_311_device_gets_the_answer_on_the_fallback_topic_and_no_device_may_aim_answers_at_another()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("clock-2"))["token"]!;
        await env.RegisterAsync("clock-3");
        await using var legacy = await DeviceMqttClient.ConnectAsync(env, "clock-2", token, MQTTnet.Formatter.MqttProtocolVersion.V311);
        await legacy.SubscribeAsync("device/clock-2/rpc/+/response");
        using var modern = new MqttClientFactory().CreateMqttClient();
        await modern.ConnectAsync(MqttTestClient.Options(env, "clock-2b", "clock-2", token));

        await legacy.PublishAsync("device/clock-2/rpc/ping", "");
        var pong = await legacy.NextAsync("device/clock-2/rpc/ping/response");
        await legacy.PublishAsync("device/clock-2/rpc/reboot", "");
        var unknown = await legacy.NextAsync("device/clock-2/rpc/reboot/response");
        var elsewhere = await modern.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("device/clock-2/rpc/time")
            .WithResponseTopic("device/clock-3/command")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());

        Assert.True((bool)pong["pong"]!);
        Assert.Contains("unknown method", (string?)unknown["error"], StringComparison.Ordinal);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, elsewhere.ReasonCode);
    }

    private static int Count(List<MqttApplicationMessage> replies)
    {
        lock (replies)
        {
            return replies.Count;
        }
    }
}
