using Fieldline.Mqtt.Protocol;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Protocol;

public class PacketDecoderTests
{
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V500 = MqttProtocolVersion.V500;

    [Fact]
    public void A_QoS_0_publish_is_decoded_without_a_packet_id()
    {
        byte[] body = [0x00, 0x03, (byte)'a', (byte)'/', (byte)'b', 0x68, 0x69];
        var publish = MqttPacketDecoder.DecodePublish(0x01, body, V311);

        Assert.Equal("a/b", publish.GetTopic());
        Assert.Equal("hi"u8.ToArray(), publish.Payload.ToArray());
        Assert.Equal(0, publish.QualityOfService);
        Assert.True(publish.Retain);
        Assert.False(publish.Duplicate);
        Assert.Equal(0, publish.PacketId);
        Assert.True(publish.Properties.IsEmpty);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_QoS_1_or_2_publish_carries_its_packet_id(byte qos)
    {
        byte[] body = [0x00, 0x01, (byte)'t', 0x12, 0x34, 0xFF];
        var publish = MqttPacketDecoder.DecodePublish((byte)(0x08 | (qos << 1)), body, V311);

        Assert.Equal(qos, publish.QualityOfService);
        Assert.Equal(0x1234, publish.PacketId);
        Assert.True(publish.Duplicate);
        Assert.Equal(new byte[] { 0xFF }, publish.Payload.ToArray());
    }

    [Fact]
    public void A_5_0_publish_keeps_its_properties_block_apart_from_the_payload()
    {
        byte[] properties = [0x01, 0x01, 0x03, 0x00, 0x04, (byte)'t', (byte)'e', (byte)'x', (byte)'t', 0x26, 0x00, 0x01, (byte)'k', 0x00, 0x01, (byte)'v'];
        var body = Concat(Str("x/y"), U16(5), [(byte)properties.Length], properties, "data"u8.ToArray());
        var publish = MqttPacketDecoder.DecodePublish(0x02, body, V500);

        Assert.Equal("x/y", publish.GetTopic());
        Assert.Equal(5, publish.PacketId);
        Assert.Equal(properties, publish.Properties.ToArray());
        Assert.Equal("data"u8.ToArray(), publish.Payload.ToArray());
    }

    [Fact]
    public void A_publish_with_an_empty_payload_is_valid()
    {
        var publish = MqttPacketDecoder.DecodePublish(0x01, Concat(Str("t"), [0]), V500);
        Assert.True(publish.Payload.IsEmpty);
        Assert.True(publish.Retain);
    }

    [Theory]
    [InlineData("a/+")]
    [InlineData("#")]
    [InlineData("a/#")]
    public void A_wildcard_in_a_publish_topic_is_topic_name_invalid(string topic)
    {
        var ex = Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0, Concat(Str(topic), [0]), V500));
        Assert.Equal(MqttReasonCode.TopicNameInvalid, ex.ReasonCode);
    }

    [Fact]
    public void Topic_alias_0_is_topic_alias_invalid()
    {
        var body = Concat(Str("t"), Props([0x23, 0x00, 0x00]));
        var ex = Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0, body, V500));
        Assert.Equal(MqttReasonCode.TopicAliasInvalid, ex.ReasonCode);
    }

    [Fact]
    public void A_topic_alias_with_an_empty_topic_is_decoded_and_its_properties_can_be_cut_out()
    {
        var body = Concat(Str(""), Props([0x01, 1], [0x23, 0x00, 0x07], [0x02, 0, 0, 0, 9], [0x03, .. Str("ct")]), [1, 2]);
        var publish = MqttPacketDecoder.DecodePublish(0, body, V500);
        Assert.True(publish.TopicUtf8.IsEmpty);
        Assert.Equal(7, publish.TopicAlias);
        Assert.Equal(9u, publish.MessageExpirySeconds);
        Assert.True(publish.IsUtf8Payload);

        var stripped = new byte[publish.Properties.Length];
        var length = MqttPacketDecoder.StripDeliveryProperties(publish.Properties.Span, publish.AliasPropertyRange, publish.ExpiryPropertyRange, stripped);
        Assert.Equal(Hex([0x01, 1, 0x03, .. Str("ct")]), Hex(stripped.AsSpan(0, length).ToArray()));
    }

    [Theory]
    [InlineData(0x02)]
    [InlineData(0x04)]
    public void Packet_id_0_on_a_QoS_1_or_2_publish_is_malformed(byte flags)
    {
        var ex = Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(flags, Concat(Str("t"), U16(0)), V311));
        Assert.Equal(MqttReasonCode.MalformedPacket, ex.ReasonCode);
    }

    [Fact]
    public void QoS_3_is_malformed()
    {
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0x06, Concat(Str("t"), U16(1)), V311));
    }

    [Fact]
    public void An_empty_topic_is_refused()
    {
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0, Concat(Str(""), [0]), V500));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0, Str(""), V311));
    }

    [Fact]
    public void DUP_on_QoS_0_is_a_5_0_protocol_error()
    {
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0x08, Concat(Str("t"), [0]), V500));
    }

    [Theory]
    [InlineData(new byte[] { 0x01, 0x02 })]                         // payload format 2
    [InlineData(new byte[] { 0x11, 0, 0, 0, 1 })]                   // session expiry: not a PUBLISH property
    [InlineData(new byte[] { 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1 })] // message expiry twice
    [InlineData(new byte[] { 0x08, 0x00, 0x01, (byte)'#' })]        // wildcard response topic
    [InlineData(new byte[] { 0x02, 0, 0 })]                         // truncated value
    public void Invalid_publish_properties_are_refused(byte[] properties)
    {
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodePublish(0, Concat(Str("t"), Props(properties)), V500));
    }

    [Fact]
    public void A_3_1_1_subscribe_is_decoded()
    {
        byte[] body = [0x00, 0x0A, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'#', 0x01, 0x00, 0x01, (byte)'+', 0x00];
        var subscribe = MqttPacketDecoder.DecodeSubscribe(0x02, body, V311);

        Assert.Equal(10, subscribe.PacketId);
        Assert.Equal(2, subscribe.Subscriptions.Count);
        Assert.Equal(new MqttTopicSubscription("a/#", 1, false, false, 0), subscribe.Subscriptions[0]);
        Assert.Equal(new MqttTopicSubscription("+", 0, false, false, 0), subscribe.Subscriptions[1]);
    }

    [Fact]
    public void A_5_0_subscribe_decodes_options_and_subscription_identifier()
    {
        var body = Concat(U16(3), Props([0x0B, 0x05]), Str("x"), [0x2E]); // retain handling 2, RAP, NL, QoS 2
        var subscribe = MqttPacketDecoder.DecodeSubscribe(0x02, body, V500);

        Assert.Equal(5u, subscribe.SubscriptionIdentifier);
        Assert.Equal(new MqttTopicSubscription("x", 2, true, true, 2), subscribe.Subscriptions.Single());
    }

    [Theory]
    [InlineData(4, 0x03)] // QoS 3
    [InlineData(4, 0x04)] // 3.1.1 reserved bits
    [InlineData(5, 0x40)] // 5.0 reserved bits
    [InlineData(5, 0x30)] // retain handling 3
    public void Invalid_subscription_options_are_malformed(int level, byte options)
    {
        var body = Concat(U16(1), level == 5 ? [0] : [], Str("t"), [options]);
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeSubscribe(0x02, body, (MqttProtocolVersion)level));
    }

    [Fact]
    public void Subscribe_without_filters_flags_or_packet_id_is_refused()
    {
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeSubscribe(0x02, U16(1), V311));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeSubscribe(0x00, Concat(U16(1), Str("t"), [0]), V311));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeSubscribe(0x02, Concat(U16(0), Str("t"), [0]), V311));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeSubscribe(0x02, Concat(U16(1), Props([0x0B, 0x00]), Str("t"), [0]), V500));
    }

    [Fact]
    public void An_unsubscribe_is_decoded_for_both_versions()
    {
        var v311 = MqttPacketDecoder.DecodeUnsubscribe(0x02, Concat(U16(9), Str("a/b"), Str("c/#")), V311);
        Assert.Equal(9, v311.PacketId);
        Assert.Equal(["a/b", "c/#"], v311.Filters);

        var v500 = MqttPacketDecoder.DecodeUnsubscribe(0x02, Concat(U16(9), Props([0x26, .. Str("k"), .. Str("v")]), Str("a")), V500);
        Assert.Equal(["a"], v500.Filters);
    }

    [Fact]
    public void Invalid_unsubscribes_are_refused()
    {
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeUnsubscribe(0x02, U16(9), V311));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeUnsubscribe(0x00, Concat(U16(9), Str("a")), V311));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeUnsubscribe(0x02, Concat(U16(9), Props([0x0B, 1]), Str("a")), V500));
    }

    [Fact]
    public void Acknowledgements_are_decoded_with_and_without_reason_code()
    {
        Assert.Equal(7, MqttPacketDecoder.DecodeAck(0, 0, U16(7), V311, out var reason));
        Assert.Equal(MqttReasonCode.Success, reason);

        Assert.Equal(7, MqttPacketDecoder.DecodeAck(0, 0, Concat(U16(7), [0x10]), V500, out reason));
        Assert.Equal(MqttReasonCode.NoMatchingSubscribers, reason);

        Assert.Equal(7, MqttPacketDecoder.DecodeAck(2, 2, Concat(U16(7), [0x92], Props([0x1F, .. Str("why")])), V500, out reason));
        Assert.Equal(MqttReasonCode.PacketIdentifierNotFound, reason);

        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeAck(0, 2, U16(7), V311, out _));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeAck(0, 0, Concat(U16(7), [0]), V311, out _));
    }

    [Fact]
    public void A_disconnect_is_decoded_for_both_versions()
    {
        Assert.Equal(MqttReasonCode.Success, MqttPacketDecoder.DecodeDisconnect(0, [], V311, out var expiry));
        Assert.Null(expiry);
        Assert.Equal(MqttReasonCode.Success, MqttPacketDecoder.DecodeDisconnect(0, [], V500, out expiry));
        Assert.Equal(MqttReasonCode.DisconnectWithWillMessage, MqttPacketDecoder.DecodeDisconnect(0, [0x04], V500, out expiry));
        Assert.Equal(MqttReasonCode.Success, MqttPacketDecoder.DecodeDisconnect(0, Concat([0x00], Props([0x11, 0, 0, 0, 30])), V500, out expiry));
        Assert.Equal(30u, expiry);

        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeDisconnect(0, [0], V311, out _));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeDisconnect(1, [], V311, out _));
        Assert.Throws<MqttProtocolException>(() => MqttPacketDecoder.DecodeDisconnect(0, Concat([0x00], Props([0x01, 0])), V500, out _));
    }
}
