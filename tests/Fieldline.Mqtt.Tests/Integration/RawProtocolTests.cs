using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>The broker spoken to byte by byte, for what library clients will not do.</summary>
public class RawProtocolTests
{
    private static readonly byte[] PingReq = [0xC0, 0x00];

    [Fact]
    public async Task A_malformed_packet_closes_only_that_connection_after_a_5_0_DISCONNECT_0x81()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "sub");
        await subscriber.SendAsync(Subscribe(5, 1, "t/#", 0));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        await using var bad = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "bad");
        await bad.SendAsync(Packet(0x36, Str("t/x"), U16(1), [0], [1])); // PUBLISH with QoS 3
        var packets = await bad.ReadUntilClosedAsync();
        var disconnect = Assert.Single(packets);
        Assert.Equal(0xE0, disconnect.Header);
        Assert.Equal(0x81, disconnect.Body[0]);
        Assert.Contains("QoS 3", System.Text.Encoding.UTF8.GetString(disconnect.Body), StringComparison.Ordinal); // the reason string says why

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "pub");
        await publisher.SendAsync(Publish(5, "t/y", [42]));
        var delivered = await subscriber.ReadPacketAsync();
        Assert.Equal(Hex(Publish(5, "t/y", [42])), Hex([delivered!.Header, .. Vbi(delivered.Body.Length), .. delivered.Body]));
    }

    [Fact]
    public async Task A_malformed_packet_from_a_3_1_1_client_closes_the_connection_without_a_DISCONNECT()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var bad = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "bad");
        await bad.SendAsync(Packet(0x80, U16(1), Str("t"), [0])); // SUBSCRIBE with flags 0000
        Assert.Empty(await bad.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task A_packet_over_the_maximum_packet_size_closes_with_0x95()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumPacketSize = 1024);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "big");

        // Only the fixed header and the start of the body: the broker must refuse before the rest arrives.
        await client.SendAsync([0x30, .. Vbi(2000), .. Str("t"), 1, 2, 3]);
        var packets = await client.ReadUntilClosedAsync();
        var disconnect = Assert.Single(packets);
        Assert.Equal(0xE0, disconnect.Header);
        Assert.Equal(0x95, disconnect.Body[0]);
    }

    [Fact]
    public async Task MQTT_3_1_MQIsdp_gets_connack_unacceptable_protocol_version_and_is_closed()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(Packet(0x10, Str("MQIsdp"), [0x03, 0x02], U16(60), Str("old")));
        Assert.Equal(["20 0001"], (await client.ReadUntilClosedAsync()).Select(p => p.ToString()));
    }

    [Fact]
    public async Task A_first_packet_other_than_CONNECT_closes_the_connection()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(PingReq);
        Assert.Empty(await client.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task An_unacknowledged_QoS_1_message_is_redelivered_with_DUP_after_reconnect()
    {
        await using var broker = await TestBroker.StartAsync();
        var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "redeliver", cleanStart: false);
        await subscriber.SendAsync(Subscribe(4, 1, "q/#", 1));
        Assert.Equal("90 000101", (await subscriber.ReadPacketAsync())!.ToString());

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "publisher");
        await publisher.SendAsync(Publish(4, "q/1", [7], qos: 1, packetId: 5));
        Assert.Equal("40 0005", (await publisher.ReadPacketAsync())!.ToString());

        var first = (await subscriber.ReadPacketAsync())!;
        Assert.Equal(0x32, first.Header);
        var packetId = first.Body.AsSpan(5, 2).ToArray();

        // Gone without acknowledging.
        subscriber.Abort();
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 1, "the subscriber's connection to be gone", () => broker.Broker.ConnectedClients);

        await using var again = await RawMqttClient.ConnectAsync(broker.Port);
        await again.SendAsync(Connect(4, "redeliver", cleanStart: false));
        Assert.Equal("20 0100", (await again.ReadPacketAsync())!.ToString()); // session present
        var redelivered = (await again.ReadPacketAsync())!;
        Assert.Equal(0x3A, redelivered.Header); // PUBLISH, DUP, QoS 1
        Assert.Equal(Hex(first.Body), Hex(redelivered.Body));

        await again.SendAsync([0x40, 0x02, .. packetId]);
        await again.SendAsync(PingReq);
        Assert.Equal("D0 ", (await again.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task With_AcceptWhen_the_PUBACK_waits_for_the_task_and_acknowledgements_keep_their_order()
    {
        var stored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var policy = new TestPolicy
        {
            Publish = (_, in p) => p.GetTopic() == "slow" ? MqttPublishDecision.AcceptWhen(stored.Task) : MqttPublishDecision.Accept,
        };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "sub");
        await subscriber.SendAsync(Subscribe(5, 1, "#", 0));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "device");
        await client.SendAsync(Publish(5, "slow", [1], qos: 1, packetId: 1));
        await client.SendAsync(Publish(5, "fast", [2], qos: 1, packetId: 2));
        await client.SendAsync(PingReq);

        // PINGRESP is written after the two PUBLISH packets were handled: no PUBACK may come before it.
        Assert.Equal("D0 ", (await client.ReadPacketAsync())!.ToString());

        // Routed at once, acknowledged later.
        Assert.Equal(3, (await subscriber.ReadPacketAsync())!.Type);
        Assert.Equal(3, (await subscriber.ReadPacketAsync())!.Type);

        stored.SetResult();
        Assert.Equal("40 0001", (await client.ReadPacketAsync())!.ToString());
        Assert.Equal("40 0002", (await client.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task With_AcceptWhen_a_failed_task_gives_a_5_0_PUBACK_0x83()
    {
        var policy = new TestPolicy { Publish = (_, in _) => MqttPublishDecision.AcceptWhen(Task.FromException(new InvalidOperationException("disk full"))) };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "device");
        await client.SendAsync(Publish(5, "t", [1], qos: 1, packetId: 3));
        Assert.Equal("40 000383", (await client.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task A_QoS_2_packet_id_whose_message_was_not_accepted_is_free_for_a_new_message()
    {
        var attempts = 0;
        var policy = new TestPolicy
        {
            Publish = (_, in _) => Interlocked.Increment(ref attempts) == 1
                ? MqttPublishDecision.AcceptWhen(Task.FromException(new InvalidOperationException("disk full")))
                : MqttPublishDecision.Accept,
        };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "sub");
        await subscriber.SendAsync(Subscribe(5, 1, "t", 0));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "device");

        await client.SendAsync(Publish(5, "t", [1], qos: 2, packetId: 7));
        Assert.Equal("50 000783", (await client.ReadPacketAsync())!.ToString());
        Assert.Equal(3, (await subscriber.ReadPacketAsync())!.Type);

        // The first message was refused, so packet id 7 carries a new message, not a retransmission.
        await client.SendAsync(Publish(5, "t", [2], qos: 2, packetId: 7));
        Assert.Equal("50 0007", (await client.ReadPacketAsync())!.ToString());
        var second = await subscriber.ReadPacketAsync();
        Assert.True(second is { Type: 3 } && second.Body[^1] == 2, $"expected the second message routed, got {second?.ToString() ?? "end of stream"}");
    }

    [Fact]
    public async Task The_broker_stops_reading_when_the_receive_window_of_pending_acknowledgements_is_full()
    {
        var stored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var policy = new TestPolicy { Publish = (_, in _) => MqttPublishDecision.AcceptWhen(stored.Task) };
        await using var broker = await TestBroker.StartAsync(o => o.ReceiveMaximum = 2, policy);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "device");
        await client.SendAsync(Concat(Publish(5, "t", [1], qos: 1, packetId: 1), Publish(5, "t", [2], qos: 1, packetId: 2), PingReq));
        Assert.Null(await client.TryReadPacketAsync(TimeSpan.FromMilliseconds(300)));

        stored.SetResult();
        Assert.Equal("40 0001", (await client.ReadPacketAsync())!.ToString());
        Assert.Equal("40 0002", (await client.ReadPacketAsync())!.ToString());
        Assert.Equal("D0 ", (await client.ReadPacketAsync())!.ToString());
    }

    [Theory]
    [InlineData(4, "bad", "20 0005")]
    [InlineData(4, "other", "20 0005")]
    [InlineData(5, "bad", "20 008600")]
    [InlineData(5, "other", "20 008700")]
    public async Task A_policy_refusing_CONNECT_gets_the_right_connack_and_a_close(int level, string clientId, string expected)
    {
        var policy = new TestPolicy
        {
            Authenticate = (c, _) => c.ClientId == "bad" ? MqttReasonCode.BadUserNameOrPassword : MqttReasonCode.NotAuthorized,
        };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(Connect(level, clientId));
        Assert.Equal([expected], (await client.ReadUntilClosedAsync()).Select(p => p.ToString()));
        Assert.Equal(0, broker.Broker.SessionCount);
    }

    [Theory]
    [InlineData(4, "90 00010180")]
    [InlineData(5, "90 0001000187")]
    public async Task A_policy_refusing_SUBSCRIBE_gets_the_refusal_in_SUBACK(int level, string expected)
    {
        var policy = new TestPolicy { AllowSubscribe = f => !f.StartsWith("secret", StringComparison.Ordinal) };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, level, "c");
        await client.SendAsync(Packet(0x82, U16(1), level == 5 ? [0] : [], Str("open"), [1], Str("secret/#"), [1]));
        Assert.Equal(expected, (await client.ReadPacketAsync())!.ToString());

        // The refused filter delivers nothing; the granted one does.
        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, level, "p");
        await publisher.SendAsync(Publish(level, "secret/x", [1]));
        await publisher.SendAsync(Publish(level, "open", [2]));
        var delivered = (await client.ReadPacketAsync())!;
        Assert.Equal(Hex(Publish(level, "open", [2]).AsSpan(2)), Hex(delivered.Body));
    }

    [Theory]
    [InlineData(4, "40 0009")]
    [InlineData(5, "40 000987")]
    public async Task A_policy_refusing_PUBLISH_acknowledges_with_the_refusal_and_drops_the_message(int level, string expectedAck)
    {
        var policy = new TestPolicy { AllowPublish = t => t != "forbidden" };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, level, "s");
        await subscriber.SendAsync(Subscribe(level, 1, "#", 1));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, level, "p");
        await publisher.SendAsync(Publish(level, "forbidden", [1], qos: 1, packetId: 9));
        Assert.Equal(expectedAck, (await publisher.ReadPacketAsync())!.ToString());

        // Anything routed would have been written to the subscriber before the PUBACK; PINGRESP comes after.
        await subscriber.SendAsync(PingReq);
        Assert.Equal("D0 ", (await subscriber.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task A_default_policy_refuses_publishing_to_dollar_topics()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "p");
        await publisher.SendAsync(Publish(5, "$SYS/x", [1], qos: 1, packetId: 1));
        Assert.Equal("40 000187", (await publisher.ReadPacketAsync())!.ToString());
    }

    [Fact]
    public async Task Keep_alive_timeout_closes_a_silent_5_0_client_with_0x8D()
    {
        var time = new FakeTimeProvider();
        await using var broker = await TestBroker.StartAsync(timeProvider: time);
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(Connect(5, "sleepy", keepAlive: 10));
        Assert.Equal(2, (await client.ReadPacketAsync())!.Type);

        // A client that pings within 1.5 times the keep-alive stays.
        time.Advance(TimeSpan.FromSeconds(10));
        await client.SendAsync(PingReq);
        Assert.Equal("D0 ", (await client.ReadPacketAsync())!.ToString());
        time.Advance(TimeSpan.FromSeconds(10));
        await client.SendAsync(PingReq);
        Assert.Equal("D0 ", (await client.ReadPacketAsync())!.ToString());

        time.Advance(TimeSpan.FromSeconds(16));
        Assert.Equal(["E0 8D00"], (await client.ReadUntilClosedAsync()).Select(p => p.ToString()));
    }

    [Fact]
    public async Task A_5_0_client_taken_over_by_the_same_client_id_gets_DISCONNECT_0x8E()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var first = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "same");
        await using var second = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "same");
        Assert.Equal(["E0 8E00"], (await first.ReadUntilClosedAsync()).Select(p => p.ToString()));
        await second.SendAsync(PingReq);
        Assert.Equal("D0 ", (await second.ReadPacketAsync())!.ToString());
        Assert.Equal(1, broker.Broker.SessionCount);
    }

    [Fact]
    public async Task Inbound_QoS_2_is_acknowledged_with_PUBREC_and_PUBCOMP_and_delivered_once()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "s");
        await subscriber.SendAsync(Subscribe(4, 1, "q2", 2));
        Assert.Equal("90 000102", (await subscriber.ReadPacketAsync())!.ToString());

        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "p");
        await publisher.SendAsync(Publish(4, "q2", [1], qos: 2, packetId: 3));
        Assert.Equal("50 0003", (await publisher.ReadPacketAsync())!.ToString());

        // A retransmission before PUBREL is acknowledged again but not delivered again.
        await publisher.SendAsync(Publish(4, "q2", [1], qos: 2, packetId: 3, dup: true));
        Assert.Equal("50 0003", (await publisher.ReadPacketAsync())!.ToString());
        await publisher.SendAsync([0x62, 0x02, 0x00, 0x03]);
        Assert.Equal("70 0003", (await publisher.ReadPacketAsync())!.ToString());

        // Delivered at QoS 2 too: PUBLISH, PUBREC from the subscriber, PUBREL from the broker, PUBCOMP.
        var delivered = (await subscriber.ReadPacketAsync())!;
        Assert.Equal(0x34, delivered.Header);
        await subscriber.SendAsync([0x50, 0x02, delivered.Body[4], delivered.Body[5]]);
        Assert.Equal($"62 {delivered.Body[4]:X2}{delivered.Body[5]:X2}", (await subscriber.ReadPacketAsync())!.ToString());
        await subscriber.SendAsync([0x70, 0x02, delivered.Body[4], delivered.Body[5]]);
        await subscriber.SendAsync(PingReq);
        Assert.Equal("D0 ", (await subscriber.ReadPacketAsync())!.ToString());
    }
}
