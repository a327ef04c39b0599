using System.Net.WebSockets;
using System.Text;
using Fieldline.Mqtt.Tests.Infrastructure;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Transport;

/// <summary>MQTT over WebSocket through <see cref="Mqtt.Transport.WebSocketConnection"/>, with MQTTnet and with raw WebSocket frames.</summary>
public sealed class WebSocketConnectionTests
{
    public static TheoryData<MqttNetVersion> Versions => [MqttNetVersion.V311, MqttNetVersion.V500];

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task MQTTnet_over_WebSocket_and_a_TCP_client_exchange_QoS_1_messages_both_ways(MqttNetVersion version)
    {
        await using var broker = await WebSocketBroker.StartAsync();
        await using var overWebSocket = await MqttNetClient.ConnectWebSocketAsync(broker.WebSocketUri, "ws-client", version);
        await using var overTcp = await MqttNetClient.ConnectAsync(broker.TcpPort, "tcp-client", version);
        await overWebSocket.SubscribeAsync("to-ws/#", 1);
        await overTcp.SubscribeAsync("to-tcp/#", 1);

        for (var i = 0; i < 50; i++)
        {
            var toWebSocket = await overTcp.PublishAsync($"to-ws/{i}", $"t{i}", qos: 1);
            var toTcp = await overWebSocket.PublishAsync($"to-tcp/{i}", $"w{i}", qos: 1);
            Assert.True(toWebSocket.IsSuccess && toTcp.IsSuccess, $"PUBACK {i}: {toWebSocket.ReasonCode}, {toTcp.ReasonCode}");
        }

        await overWebSocket.WaitForAsync(50, "50 messages from the TCP client");
        await overTcp.WaitForAsync(50, "50 messages from the WebSocket client");
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"t{i}"), overWebSocket.Messages.Select(m => m.Payload));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"w{i}"), overTcp.Messages.Select(m => m.Payload));
    }

    [Theory]
    [InlineData("user-properties")]
    [InlineData("topic-aliases")]
    [InlineData("shared-subscription")]
    [InlineData("request-response")]
    public async Task MQTT_js_scenarios_pass_over_WebSocket(string scenario)
    {
        await using var broker = await WebSocketBroker.StartAsync();

        var run = await MqttJsScenario.RunAsync(broker.WebSocketUri.Port, scenario, url: broker.WebSocketUri);

        Assert.True(run.ExitCode == 0 && run["ok"].GetBoolean(), $"MQTT.js over WebSocket failed {scenario}: {run["failures"]}. {run.Describe()}");
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "MQTT.js's connections closed", () => broker.Broker.ConnectedClients);
    }

    [Fact]
    public async Task Packets_split_across_messages_and_several_packets_in_one_message_are_read_in_order()
    {
        await using var broker = await WebSocketBroker.StartAsync();
        await using var client = await RawWebSocketClient.ConnectAsync(broker.WebSocketUri);
        var connect = Connect(4, "split");

        // CONNECT a byte at a time, then SUBSCRIBE and a PUBLISH to that subscription in one message.
        foreach (var b in connect)
        {
            await client.SendAsync([b]);
        }

        var connack = await client.ReadPacketAsync();
        await client.SendAsync(Concat(Subscribe(4, 1, "echo/#", 0), Publish(4, "echo/1", Encoding.UTF8.GetBytes("hello"))));
        var suback = await client.ReadPacketAsync();
        var publish = await client.ReadPacketAsync();

        Assert.Equal("20020000", $"{connack!.Header:X2}{connack.Body.Length:X2}{Hex(connack.Body)}");
        Assert.Equal(9, suback!.Type);
        Assert.Equal(Hex(Publish(4, "echo/1", Encoding.UTF8.GetBytes("hello"))), Hex(Concat([publish!.Header], Vbi(publish.Body.Length), publish.Body)));
    }

    [Fact]
    public async Task A_text_message_closes_the_connection_with_1003()
    {
        await using var broker = await WebSocketBroker.StartAsync();
        await using var client = await RawWebSocketClient.ConnectAsync(broker.WebSocketUri);
        await client.SendAsync(Connect(4, "texter"));
        Assert.Equal(2, (await client.ReadPacketAsync())!.Type);

        await client.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text);
        var remaining = await client.ReadUntilClosedAsync();

        Assert.Empty(remaining);
        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, client.CloseStatus);
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "the client gone from the broker", () => broker.Broker.ConnectedClients);
    }

    [Fact]
    public async Task A_close_from_the_client_ends_the_connection_publishes_the_will_and_is_answered()
    {
        await using var broker = await WebSocketBroker.StartAsync();
        await using var watcher = await RawMqttClient.ConnectMqttAsync(broker.TcpPort, 4, "watcher");
        await watcher.SendAsync(Subscribe(4, 1, "wills/#", 0));
        Assert.Equal(9, (await watcher.ReadPacketAsync())!.Type);
        await using var client = await RawWebSocketClient.ConnectAsync(broker.WebSocketUri);
        await client.SendAsync(Connect(4, "leaver", willTopic: "wills/leaver", willPayload: Encoding.UTF8.GetBytes("gone")));
        Assert.Equal(2, (await client.ReadPacketAsync())!.Type);

        // A WebSocket close without DISCONNECT: for MQTT the network connection is lost.
        await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        var remaining = await client.ReadUntilClosedAsync();

        Assert.Empty(remaining);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal(WebSocketState.Closed, client.Socket.State);
        var will = await watcher.ReadPacketAsync();
        Assert.Equal(Hex(Publish(4, "wills/leaver", Encoding.UTF8.GetBytes("gone"))), Hex(Concat([will!.Header], Vbi(will.Body.Length), will.Body)));
        await Poll.UntilAsync(() => broker.CloseStatuses.Count == 1, "the server's side of the connection ended");
        Assert.Equal(WebSocketCloseStatus.NormalClosure, Assert.Single(broker.CloseStatuses));
    }

    [Fact]
    public async Task When_the_broker_closes_the_connection_its_last_packet_is_sent_before_a_normal_close()
    {
        await using var broker = await WebSocketBroker.StartAsync();
        await using var client = await RawWebSocketClient.ConnectAsync(broker.WebSocketUri);
        await client.SendAsync(Connect(5, "dropped"));
        Assert.Equal(2, (await client.ReadPacketAsync())!.Type);

        Assert.True(broker.Broker.Disconnect("dropped"), "the broker knows the client");
        var remaining = await client.ReadUntilClosedAsync();

        var disconnect = Assert.Single(remaining);
        Assert.Equal(14, disconnect.Type);
        Assert.Equal((byte)MqttReasonCode.AdministrativeAction, disconnect.Body[0]);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        await Poll.UntilAsync(() => broker.CloseStatuses.Count == 1, "the server's side of the connection ended");
    }

    [Fact]
    public async Task A_connection_closed_before_CONNECT_ends_without_a_client()
    {
        await using var broker = await WebSocketBroker.StartAsync();
        await using var client = await RawWebSocketClient.ConnectAsync(broker.WebSocketUri);
        await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);

        var remaining = await client.ReadUntilClosedAsync();

        Assert.Empty(remaining);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        await Poll.UntilAsync(() => broker.CloseStatuses.Count == 1, "the server's side of the connection ended");
        Assert.Equal(0, broker.Broker.ConnectedClients);
    }
}
