using System.Collections.Concurrent;
using MQTTnet;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>A message an MQTTnet client received.</summary>
public sealed record Received(string Topic, string Payload, int Qos, bool Retain, bool Dup);

/// <summary>An MQTTnet client that records what it receives and why it was disconnected.</summary>
public sealed class MqttNetClient : IAsyncDisposable
{
    private MqttNetClient(IMqttClient client) => Client = client;

    public IMqttClient Client { get; }

    public ConcurrentQueue<Received> Messages { get; } = new();

    /// <summary>The messages as MQTTnet decoded them, with their 5.0 properties.</summary>
    public ConcurrentQueue<MQTTnet.MqttApplicationMessage> Full { get; } = new();

    public TaskCompletionSource<MqttClientDisconnectedEventArgs> Disconnected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static Task<MqttNetClient> ConnectAsync(int port, string clientId, MqttNetVersion version, Action<MqttClientOptionsBuilder>? configure = null) =>
        ConnectAsync(b => b.WithTcpServer("127.0.0.1", port), clientId, version, configure);

    /// <summary>Connects over WebSocket (MQTTnet offers the subprotocol mqtt).</summary>
    public static Task<MqttNetClient> ConnectWebSocketAsync(Uri uri, string clientId, MqttNetVersion version, Action<MqttClientOptionsBuilder>? configure = null) =>
        ConnectAsync(b => b.WithWebSocketServer(o => o.WithUri(uri.ToString())), clientId, version, configure);

    private static async Task<MqttNetClient> ConnectAsync(Action<MqttClientOptionsBuilder> transport, string clientId, MqttNetVersion version, Action<MqttClientOptionsBuilder>? configure)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var result = new MqttNetClient(client);
        client.ApplicationMessageReceivedAsync += e =>
        {
            var m = e.ApplicationMessage;
            result.Full.Enqueue(m);
            result.Messages.Enqueue(new Received(m.Topic, m.ConvertPayloadToString() ?? "", (int)m.QualityOfServiceLevel, m.Retain, m.Dup));
            return Task.CompletedTask;
        };
        client.DisconnectedAsync += e =>
        {
            result.Disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        var builder = new MqttClientOptionsBuilder()
            .WithClientId(clientId)
            .WithProtocolVersion(version)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(60));
        transport(builder);
        configure?.Invoke(builder);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(builder.Build(), cts.Token);
        return result;
    }

    public async Task SubscribeAsync(string filter, int qos = 1)
    {
        var result = await Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, (MQTTnet.Protocol.MqttQualityOfServiceLevel)qos).Build());
        Assert.True((int)result.Items.Single().ResultCode <= 2, $"subscription to {filter} refused: {result.Items.Single().ResultCode}");
    }

    public Task<MqttClientPublishResult> PublishAsync(string topic, string payload, int qos = 0, bool retain = false) =>
        Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel((MQTTnet.Protocol.MqttQualityOfServiceLevel)qos).WithRetainFlag(retain).Build());

    public Task WaitForAsync(int count, string what) =>
        Poll.UntilAsync(() => Messages.Count >= count, $"{count} message(s): {what}", () => string.Join(", ", Messages));

    public async ValueTask DisposeAsync()
    {
        if (Client.IsConnected)
        {
            try
            {
                await Client.DisconnectAsync();
            }
            catch (Exception)
            {
                // Already gone.
            }
        }

        Client.Dispose();
    }
}
