using System.Buffers;
using Fieldline.Mqtt.Protocol;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Protocol;

public class PacketEncoderTests
{
    private static byte[] Encode(Action<ArrayBufferWriter<byte>> write)
    {
        var writer = new ArrayBufferWriter<byte>();
        write(writer);
        return writer.WrittenSpan.ToArray();
    }

    [Fact]
    public void A_3_1_1_connack_is_four_bytes_with_the_return_code()
    {
        var capabilities = new MqttServerCapabilities(1024, 10);
        Assert.Equal([0x20, 0x02, 0x01, 0x00], Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V311, true, MqttReasonCode.Success, null, capabilities)));
        Assert.Equal([0x20, 0x02, 0x00, 0x01], Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V311, false, MqttReasonCode.UnsupportedProtocolVersion, null, capabilities)));
        Assert.Equal([0x20, 0x02, 0x00, 0x02], Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V311, false, MqttReasonCode.ClientIdentifierNotValid, null, capabilities)));
        Assert.Equal([0x20, 0x02, 0x00, 0x05], Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V311, false, MqttReasonCode.NotAuthorized, null, capabilities)));
    }

    [Fact]
    public void A_5_0_connack_announces_the_server_capabilities()
    {
        var bytes = Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V500, false, MqttReasonCode.Success, null, new MqttServerCapabilities(0x10000, 100, TopicAliasMaximum: 10)));
        byte[] expected =
        [
            0x20, 0x0E, 0x00, 0x00, 0x0B,
            0x27, 0x00, 0x01, 0x00, 0x00, // maximum packet size 65536
            0x21, 0x00, 0x64,             // receive maximum 100
            0x22, 0x00, 0x0A,             // topic alias maximum 10 (shared subscriptions and identifiers: available, the default)
        ];
        Assert.Equal(Hex(expected), Hex(bytes));
    }

    [Fact]
    public void A_5_0_connack_carries_assigned_client_id_and_server_keep_alive()
    {
        var bytes = Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V500, true, MqttReasonCode.Success, "ab", new MqttServerCapabilities(256, 1, 30)));
        byte[] expected =
        [
            0x20, 0x13, 0x01, 0x00, 0x10,
            0x27, 0x00, 0x00, 0x01, 0x00,
            0x21, 0x00, 0x01,
            0x13, 0x00, 0x1E,
            0x12, 0x00, 0x02, (byte)'a', (byte)'b',
        ];
        Assert.Equal(Hex(expected), Hex(bytes));
    }

    [Fact]
    public void A_5_0_refusing_connack_has_only_the_reason_code()
    {
        var bytes = Encode(w => MqttPacketEncoder.WriteConnAck(w, MqttProtocolVersion.V500, false, MqttReasonCode.NotAuthorized, null, new MqttServerCapabilities(256, 1)));
        Assert.Equal([0x20, 0x03, 0x00, 0x87, 0x00], bytes);
    }

    [Fact]
    public void Acknowledgements_carry_a_reason_code_only_on_5_0_and_only_when_not_success()
    {
        Assert.Equal([0x40, 0x02, 0x12, 0x34], Encode(w => MqttPacketEncoder.WriteAck(w, MqttPacketType.PubAck, 0x1234, MqttProtocolVersion.V311, MqttReasonCode.NotAuthorized)));
        Assert.Equal([0x40, 0x02, 0x12, 0x34], Encode(w => MqttPacketEncoder.WriteAck(w, MqttPacketType.PubAck, 0x1234, MqttProtocolVersion.V500, MqttReasonCode.Success)));
        Assert.Equal([0x40, 0x03, 0x12, 0x34, 0x87], Encode(w => MqttPacketEncoder.WriteAck(w, MqttPacketType.PubAck, 0x1234, MqttProtocolVersion.V500, MqttReasonCode.NotAuthorized)));
        Assert.Equal([0x50, 0x02, 0x00, 0x01], Encode(w => MqttPacketEncoder.WriteAck(w, MqttPacketType.PubRec, 1, MqttProtocolVersion.V500, MqttReasonCode.Success)));
        Assert.Equal([0x62, 0x02, 0x00, 0x01], Encode(w => MqttPacketEncoder.WriteAck(w, MqttPacketType.PubRel, 1, MqttProtocolVersion.V311, MqttReasonCode.Success)));
        Assert.Equal([0x70, 0x03, 0x00, 0x01, 0x92], Encode(w => MqttPacketEncoder.WriteAck(w, MqttPacketType.PubComp, 1, MqttProtocolVersion.V500, MqttReasonCode.PacketIdentifierNotFound)));
    }

    [Fact]
    public void Suback_maps_failures_to_0x80_on_3_1_1()
    {
        MqttReasonCode[] reasons = [MqttReasonCode.GrantedQoS1, MqttReasonCode.NotAuthorized, MqttReasonCode.Success, MqttReasonCode.TopicFilterInvalid];
        Assert.Equal([0x90, 0x06, 0x00, 0x05, 0x01, 0x80, 0x00, 0x80], Encode(w => MqttPacketEncoder.WriteSubAck(w, MqttProtocolVersion.V311, 5, reasons)));
        Assert.Equal([0x90, 0x07, 0x00, 0x05, 0x00, 0x01, 0x87, 0x00, 0x8F], Encode(w => MqttPacketEncoder.WriteSubAck(w, MqttProtocolVersion.V500, 5, reasons)));
    }

    [Fact]
    public void Unsuback_has_reason_codes_only_on_5_0()
    {
        MqttReasonCode[] reasons = [MqttReasonCode.Success, MqttReasonCode.NoSubscriptionExisted];
        Assert.Equal([0xB0, 0x02, 0x00, 0x09], Encode(w => MqttPacketEncoder.WriteUnsubAck(w, MqttProtocolVersion.V311, 9, reasons)));
        Assert.Equal([0xB0, 0x05, 0x00, 0x09, 0x00, 0x00, 0x11], Encode(w => MqttPacketEncoder.WriteUnsubAck(w, MqttProtocolVersion.V500, 9, reasons)));
    }

    [Fact]
    public void Pingresp_and_disconnect_are_encoded()
    {
        Assert.Equal([0xD0, 0x00], Encode(MqttPacketEncoder.WritePingResp));
        Assert.Equal([0xE0, 0x02, 0x8E, 0x00], Encode(w => MqttPacketEncoder.WriteDisconnect(w, MqttReasonCode.SessionTakenOver, null)));
        Assert.Equal([0xE0, 0x06, 0x81, 0x04, 0x1F, 0x00, 0x01, (byte)'x'], Encode(w => MqttPacketEncoder.WriteDisconnect(w, MqttReasonCode.MalformedPacket, "x")));
    }

    [Fact]
    public void Publish_is_encoded_byte_by_byte()
    {
        Assert.Equal(
            [0x31, 0x06, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'b', 0x07],
            Encode(w => MqttPacketEncoder.WritePublish(w, MqttProtocolVersion.V311, "a/b"u8, [7], 0, true, false, 0, [0x01, 0x01])));
        Assert.Equal(
            [0x3A, 0x09, 0x00, 0x01, (byte)'t', 0x01, 0x02, 0x02, 0x01, 0x01, 0x07],
            Encode(w => MqttPacketEncoder.WritePublish(w, MqttProtocolVersion.V500, "t"u8, [7], 1, false, true, 0x0102, [0x01, 0x01])));
    }

    [Fact]
    public void Publish_size_matches_what_is_written_across_remaining_length_boundaries()
    {
        foreach (var payloadLength in new[] { 0, 120, 121, 122, 127, 128, 16_380, 16_384, 70_000 })
        {
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                var bytes = Encode(w => MqttPacketEncoder.WritePublish(w, version, "t/x"u8, new byte[payloadLength], 1, false, false, 1, []));
                Assert.Equal(MqttPacketEncoder.PublishSize(version, 3, payloadLength, 1, 0), bytes.Length);
            }
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, 0)]
    [InlineData(MqttProtocolVersion.V311, 1)]
    [InlineData(MqttProtocolVersion.V500, 0)]
    [InlineData(MqttProtocolVersion.V500, 1)]
    [InlineData(MqttProtocolVersion.V500, 2)]
    public void Publish_encode_then_decode_round_trips(MqttProtocolVersion version, byte qos)
    {
        byte[] properties = version == MqttProtocolVersion.V500 ? [0x03, 0x00, 0x01, (byte)'j', 0x26, 0x00, 0x01, (byte)'k', 0x00, 0x00] : [];
        var payload = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        var bytes = Encode(w => MqttPacketEncoder.WritePublish(w, version, "sensors/€/temp"u8, payload, qos, true, qos > 0, (ushort)(qos == 0 ? 0 : 4242), properties));

        var status = MqttFrameReader.TryReadFrame(new ReadOnlySequence<byte>(bytes), 1 << 20, out var frame, out _, out _);
        Assert.Equal(MqttFrameStatus.Complete, status);
        var publish = MqttPacketDecoder.DecodePublish(frame.Flags, frame.Body.ToArray(), version);

        Assert.Equal("sensors/€/temp", publish.GetTopic());
        Assert.Equal(payload, publish.Payload.ToArray());
        Assert.Equal(qos, publish.QualityOfService);
        Assert.True(publish.Retain);
        Assert.Equal(qos > 0, publish.Duplicate);
        Assert.Equal(qos == 0 ? 0 : 4242, publish.PacketId);
        Assert.Equal(properties, publish.Properties.ToArray());
    }
}
