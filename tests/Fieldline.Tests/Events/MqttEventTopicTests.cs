using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Events;

public sealed class MqttEventTopicTests
{
    [Fact]
    public async Task The_operator_receives_events_on_fieldline_topics_and_a_device_may_not_subscribe_to_them()
    {
        await using var env = await TestEnvironment.StartAsync();
        var received = new List<(string Topic, string Payload)>();
        using var operatorClient = new MqttClientFactory().CreateMqttClient();
        operatorClient.ApplicationMessageReceivedAsync += e =>
        {
            lock (received)
            {
                received.Add((e.ApplicationMessage.Topic, Encoding.UTF8.GetString(e.ApplicationMessage.Payload)));
            }

            return Task.CompletedTask;
        };
        await operatorClient.ConnectAsync(MqttTestClient.Options(env, "ops", "$admin", TestEnvironment.AdminKey));
        var granted = await operatorClient.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("$fieldline/events/+/ev-mqtt", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, granted.Items.Single().ResultCode);

        var token = (string)(await env.RegisterAsync("ev-mqtt"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "ev-mqtt", token);
        var refused = await device.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("$fieldline/events/#").Build());

        var events = await Poll.UntilAsync(
            () => Task.FromResult(Snapshot(received)),
            r => r.Count >= 2,
            "DeviceRegistered and DeviceConnected on $fieldline/events");
        Assert.Equal(["$fieldline/events/DeviceRegistered/ev-mqtt", "$fieldline/events/DeviceConnected/ev-mqtt"], events.Select(e => e.Topic).Take(2));
        Assert.Equal("DeviceRegistered", (string?)JsonNode.Parse(events[0].Payload)!["event_type"]);
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, refused.Items.Single().ResultCode);
    }

    private static List<(string Topic, string Payload)> Snapshot(List<(string Topic, string Payload)> received)
    {
        lock (received)
        {
            return [.. received];
        }
    }
}
