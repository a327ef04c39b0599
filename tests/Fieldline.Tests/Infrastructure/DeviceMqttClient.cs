using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Infrastructure;

/// <summary>An MQTTnet client connected as a device, collecting what it receives by topic.</summary>
internal sealed class DeviceMqttClient : IAsyncDisposable
{
    private readonly List<(string Topic, string Payload)> _received = [];

    private DeviceMqttClient(IMqttClient client)
    {
        Client = client;
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (_received)
            {
                _received.Add((e.ApplicationMessage.Topic, Encoding.UTF8.GetString(e.ApplicationMessage.Payload)));
            }

            return Task.CompletedTask;
        };
    }

    public IMqttClient Client { get; }

    public static Task<DeviceMqttClient> ConnectAsync(TestEnvironment env, string deviceId, string token, MQTTnet.Formatter.MqttProtocolVersion version = MQTTnet.Formatter.MqttProtocolVersion.V500) =>
        ConnectAsync(env.Application.MqttPort!.Value, deviceId, token, version);

    public static async Task<DeviceMqttClient> ConnectAsync(int port, string deviceId, string token, MQTTnet.Formatter.MqttProtocolVersion version = MQTTnet.Formatter.MqttProtocolVersion.V500)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var device = new DeviceMqttClient(client);
        await client.ConnectAsync(MqttTestClient.Options(port, deviceId, deviceId, token, version));
        return device;
    }

    public async Task SubscribeAsync(string filter)
    {
        var result = await Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, result.Items.Single().ResultCode);
    }

    public async Task PublishAsync(string topic, string payload)
    {
        var result = await Client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
        Assert.Equal(MqttClientPublishReasonCode.Success, result.ReasonCode);
    }

    /// <summary>The next message received on <paramref name="topic"/> (earlier ones on it are taken in order).</summary>
    public async Task<JsonObject> NextAsync(string topic)
    {
        string? payload = null;
        await Poll.UntilAsync(
            () => Task.FromResult(TryTake(topic, out payload)),
            taken => taken,
            $"a message on {topic} (received: {Topics()})");
        return JsonNode.Parse(payload!)!.AsObject();
    }

    public async ValueTask DisposeAsync()
    {
        if (Client.IsConnected)
        {
            await Client.DisconnectAsync();
        }

        Client.Dispose();
    }

    private string Topics()
    {
        lock (_received)
        {
            return string.Join(", ", _received.Select(r => r.Topic));
        }
    }

    private bool TryTake(string topic, out string? payload)
    {
        lock (_received)
        {
            var index = _received.FindIndex(r => r.Topic == topic);
            payload = index >= 0 ? _received[index].Payload : null;
            if (index >= 0)
            {
                _received.RemoveAt(index);
            }

            return index >= 0;
        }
    }
}
