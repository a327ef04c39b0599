using Fieldline.Mqtt.Tests.Infrastructure;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Integration;

public class ConnectAndRoutingTests
{
    [Fact]
    public async Task A_3_1_1_empty_client_id_without_clean_session_is_refused_with_return_code_2()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(Connect(4, "", cleanStart: false));
        Assert.Equal(["20 0002"], (await client.ReadUntilClosedAsync()).Select(p => p.ToString()));
    }

    [Fact]
    public async Task A_5_0_empty_client_id_is_assigned_one_in_CONNACK()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(Connect(5, ""));
        var connack = (await client.ReadPacketAsync())!;
        Assert.Equal(0, connack.Body[1]);
        var assigned = connack.Body.AsSpan(3).IndexOf((byte)0x12);
        Assert.True(assigned >= 0, $"no Assigned Client Identifier in {connack}");
        Assert.Single(broker.Broker.GetConnectedClients(), c => c.ClientId.StartsWith("fl-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Overlapping_subscriptions_deliver_one_copy_at_the_highest_granted_QoS()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "overlap");
        await subscriber.SendAsync(Packet(0x82, U16(1), Str("a/#"), [0], Str("a/+"), [1], Str("#"), [0]));
        Assert.Equal("90 0001000100", (await subscriber.ReadPacketAsync())!.ToString());

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "p");
        await publisher.SendAsync(Publish(4, "a/b", [1], qos: 1, packetId: 1));
        Assert.Equal("40 0001", (await publisher.ReadPacketAsync())!.ToString());

        var delivered = (await subscriber.ReadPacketAsync())!;
        Assert.Equal(0x32, delivered.Header);
        await subscriber.SendAsync([0x40, 0x02, delivered.Body[5], delivered.Body[6]]);
        await subscriber.SendAsync([0xC0, 0x00]);
        Assert.Equal("D0 ", (await subscriber.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task Wildcard_subscriptions_do_not_receive_dollar_topics_published_by_the_server()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var all = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "all");
        await all.SendAsync(Packet(0x82, U16(1), [0], Str("#"), [0], Str("+/x"), [0]));
        Assert.Equal(9, (await all.ReadPacketAsync())!.Type);
        await using var sys = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "sys");
        await sys.SendAsync(Subscribe(5, 1, "$SYS/#", 0));
        Assert.Equal(9, (await sys.ReadPacketAsync())!.Type);

        broker.Broker.Publish(new MqttApplicationMessage("$SYS/x", new byte[] { 1 }));
        broker.Broker.Publish(new MqttApplicationMessage("y/x", new byte[] { 2 }));

        Assert.Equal(Hex(Publish(5, "$SYS/x", [1]).AsSpan(2)), Hex((await sys.ReadPacketAsync())!.Body));
        Assert.Equal(Hex(Publish(5, "y/x", [2]).AsSpan(2)), Hex((await all.ReadPacketAsync())!.Body));
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery_and_reports_unknown_filters_on_5_0()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "u");
        await client.SendAsync(Subscribe(5, 1, "t", 0));
        Assert.Equal(9, (await client.ReadPacketAsync())!.Type);
        await client.SendAsync(Packet(0xA2, U16(2), [0], Str("t"), Str("never")));
        Assert.Equal("B0 0002000011", (await client.ReadPacketAsync())!.ToString());
        Assert.Equal(0, broker.Broker.SubscriptionCount);

        await client.SendAsync(Publish(5, "t", [1]));
        await client.SendAsync([0xC0, 0x00]);
        Assert.Equal("D0 ", (await client.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task A_5_0_DISCONNECT_with_reason_0x04_publishes_the_will()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var watcher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "watcher");
        await watcher.SendAsync(Subscribe(5, 1, "wills/#", 0));
        Assert.Equal(9, (await watcher.ReadPacketAsync())!.Type);

        await using var leaving = await RawMqttClient.ConnectAsync(broker.Port);
        await leaving.SendAsync(Connect(5, "leaving", willTopic: "wills/leaving", willPayload: [9]));
        Assert.Equal(2, (await leaving.ReadPacketAsync())!.Type);
        await leaving.SendAsync([0xE0, 0x01, 0x04]);
        Assert.Empty(await leaving.ReadUntilClosedAsync());

        Assert.Equal(Hex(Publish(5, "wills/leaving", [9]).AsSpan(2)), Hex((await watcher.ReadPacketAsync())!.Body));
    }
}
