using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Integration;

public class SessionAndSizeTests
{
    [Fact]
    public async Task A_5_0_session_expires_after_its_session_expiry_interval()
    {
        var time = new FakeTimeProvider();
        await using var broker = await TestBroker.StartAsync(timeProvider: time);
        await using (var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "expiring", cleanStart: false, properties: Props([0x11, .. U32(30)])))
        {
            await client.SendAsync(Subscribe(5, 1, "t", 1));
            Assert.Equal(9, (await client.ReadPacketAsync())!.Type);
            await client.SendAsync([0xE0, 0x00]);
            Assert.Empty(await client.ReadUntilClosedAsync());
        }

        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "the client to be offline", () => broker.Broker.ConnectedClients);
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(1, broker.Broker.SessionCount);

        time.Advance(TimeSpan.FromSeconds(11));
        await Poll.UntilAsync(() => broker.Broker.SessionCount == 0, "the session to expire", () => broker.Broker.SessionCount);
        Assert.Equal(0, broker.Broker.SubscriptionCount);
    }

    [Fact]
    public async Task A_large_message_spanning_many_pipe_segments_is_delivered_intact()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "sub");
        await subscriber.SendAsync(Subscribe(5, 1, "big", 1));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        var payload = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();
        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "pub");
        await publisher.SendAsync(Publish(5, "big", payload, qos: 1, packetId: 1));
        Assert.Equal("40 0001", (await publisher.ReadPacketAsync())!.ToString());

        var delivered = (await subscriber.ReadPacketAsync())!;
        Assert.Equal(0x32, delivered.Header);
        Assert.Equal(Hex(payload), Hex(delivered.Body.AsSpan(2 + 3 + 2 + 1)));
    }

    [Fact]
    public async Task A_message_larger_than_the_client_maximum_packet_size_is_not_sent_to_it()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "small", properties: Props([0x27, .. U32(100)]));
        await subscriber.SendAsync(Subscribe(5, 1, "t", 0));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "pub");
        await publisher.SendAsync(Publish(5, "t", new byte[200], qos: 1, packetId: 1));
        Assert.Equal("40 0001", (await publisher.ReadPacketAsync())!.ToString());
        await publisher.SendAsync(Publish(5, "t", [1], qos: 1, packetId: 2));
        Assert.Equal("40 0002", (await publisher.ReadPacketAsync())!.ToString());

        Assert.Equal(Hex(Publish(5, "t", [1]).AsSpan(2)), Hex((await subscriber.ReadPacketAsync())!.Body));
    }

    [Fact]
    public async Task A_QoS_1_message_too_large_for_the_client_does_not_hold_a_slot_of_its_window()
    {
        // One message in flight at a time: an oversized message left in flight would stall everything behind it.
        await using var broker = await TestBroker.StartAsync(o => o.MaximumInflightPerClient = 1);
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "small", properties: Props([0x27, .. U32(100)]));
        await subscriber.SendAsync(Subscribe(5, 1, "t", 1));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "pub");
        await publisher.SendAsync(Publish(5, "t", new byte[200], qos: 1, packetId: 1));
        Assert.Equal("40 0001", (await publisher.ReadPacketAsync())!.ToString());
        await publisher.SendAsync(Publish(5, "t", [7], qos: 1, packetId: 2));
        Assert.Equal("40 0002", (await publisher.ReadPacketAsync())!.ToString());

        var delivered = await subscriber.ReadPacketAsync();
        Assert.True(delivered is { Type: 3 } && delivered.Body[^1] == 7, $"expected the small QoS 1 message, got {delivered?.ToString() ?? "end of stream"}");
    }

    [Fact]
    public async Task The_broker_shuts_down_cleanly_with_clients_connected_and_tells_5_0_clients_why()
    {
        var broker = await TestBroker.StartAsync();
        await using var v5 = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "a");
        await using var v3 = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "b");
        await v5.SendAsync(Subscribe(5, 1, "x/#", 1));
        Assert.Equal(9, (await v5.ReadPacketAsync())!.Type);

        await broker.DisposeAsync();
        Assert.Equal(["E0 8B00"], (await v5.ReadUntilClosedAsync()).Select(p => p.ToString()));
        Assert.Empty(await v3.ReadUntilClosedAsync());
    }
}
