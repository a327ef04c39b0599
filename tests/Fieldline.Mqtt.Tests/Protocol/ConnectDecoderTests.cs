using System.Text;
using Fieldline.Mqtt.Protocol;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Protocol;

public class ConnectDecoderTests
{
    [Fact]
    public void A_minimal_3_1_1_connect_is_decoded()
    {
        byte[] body =
        [
            0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T',
            0x04,       // level 4
            0x02,       // clean session
            0x00, 0x3C, // keep-alive 60
            0x00, 0x03, (byte)'d', (byte)'e', (byte)'v',
        ];
        var connect = MqttConnectPacket.Decode(0, body, out var unsupported);

        Assert.False(unsupported);
        Assert.NotNull(connect);
        Assert.Equal(MqttProtocolVersion.V311, connect.ProtocolVersion);
        Assert.True(connect.CleanStart);
        Assert.Equal(60, connect.KeepAliveSeconds);
        Assert.Equal("dev", connect.ClientId);
        Assert.Null(connect.Will);
        Assert.Null(connect.Username);
        Assert.Null(connect.Password);
    }

    [Fact]
    public void A_3_1_1_connect_with_will_username_and_password_is_decoded()
    {
        byte[] body =
        [
            0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T',
            0x04,
            0xEC,       // user name, password, will retain, will QoS 1, will flag; clean session 0
            0x00, 0x0A,
            0x00, 0x01, (byte)'c',
            0x00, 0x03, (byte)'w', (byte)'/', (byte)'t', // will topic
            0x00, 0x02, 0x01, 0x02,                      // will payload
            0x00, 0x01, (byte)'u',
            0x00, 0x02, 0xAA, 0xBB,
        ];
        var connect = MqttConnectPacket.Decode(0, body, out _)!;

        Assert.False(connect.CleanStart);
        Assert.Equal(10, connect.KeepAliveSeconds);
        Assert.Equal("u", connect.Username);
        Assert.Equal(new byte[] { 0xAA, 0xBB }, connect.Password);
        Assert.NotNull(connect.Will);
        Assert.Equal("w/t", connect.Will.Topic);
        Assert.Equal(new byte[] { 1, 2 }, connect.Will.Payload.ToArray());
        Assert.Equal(1, connect.Will.QualityOfService);
        Assert.True(connect.Will.Retain);
    }

    [Fact]
    public void A_5_0_connect_with_properties_and_will_properties_is_decoded()
    {
        byte[] body =
        [
            0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T',
            0x05,
            0xC6,                                   // user name, password, will QoS 0, will flag, clean start
            0x00, 0x1E,
            0x0D,                                   // properties: 13 bytes
            0x11, 0x00, 0x00, 0x0E, 0x10,           // session expiry 3600
            0x21, 0x00, 0x14,                       // receive maximum 20
            0x27, 0x00, 0x00, 0x10, 0x00,           // maximum packet size 4096
            0x00, 0x02, (byte)'i', (byte)'d',
            0x0A,                                   // will properties: 10 bytes
            0x18, 0x00, 0x00, 0x00, 0x05,           // will delay 5
            0x02, 0x00, 0x00, 0x00, 0x3C,           // message expiry 60
            0x00, 0x01, (byte)'w',
            0x00, 0x01, 0x58,
            0x00, 0x01, (byte)'u',
            0x00, 0x01, 0x70,
        ];
        var connect = MqttConnectPacket.Decode(0, body, out var unsupported)!;

        Assert.False(unsupported);
        Assert.Equal(MqttProtocolVersion.V500, connect.ProtocolVersion);
        Assert.True(connect.CleanStart);
        Assert.Equal(30, connect.KeepAliveSeconds);
        Assert.Equal(3600u, connect.SessionExpirySeconds);
        Assert.Equal(20, connect.ReceiveMaximum);
        Assert.Equal(4096u, connect.MaximumPacketSize);
        Assert.Equal("id", connect.ClientId);
        Assert.Equal(5u, connect.WillDelaySeconds);
        Assert.Equal("w", connect.Will!.Topic);
        Assert.Equal("X"u8.ToArray(), connect.Will.Payload.ToArray());

        // The will delay belongs to CONNECT; the message expiry is written per delivery, counted from the will's publication.
        Assert.Empty(connect.Will.Properties.ToArray());
        Assert.Equal(60u, connect.WillMessageExpirySeconds);
        Assert.Equal("u", connect.Username);
        Assert.Equal("p"u8.ToArray(), connect.Password);
    }

    [Fact]
    public void A_5_0_password_without_user_name_is_allowed()
    {
        var connect = MqttConnectPacket.Decode(0, ConnectBody(5, "c", password: [1]), out _)!;
        Assert.Null(connect.Username);
        Assert.Equal(new byte[] { 1 }, connect.Password);
    }

    [Fact]
    public void A_3_1_1_password_without_user_name_is_malformed()
    {
        var ex = Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, ConnectBody(4, "c", password: [1]), out _));
        Assert.Equal(MqttReasonCode.MalformedPacket, ex.ReasonCode);
    }

    [Fact]
    public void MQTT_3_1_MQIsdp_level_3_is_reported_as_unsupported_not_thrown()
    {
        var body = Concat(Str("MQIsdp"), [0x03, 0x02], U16(60), Str("old"));
        var connect = MqttConnectPacket.Decode(0, body, out var unsupported);

        Assert.Null(connect);
        Assert.True(unsupported);
    }

    [Fact]
    public void An_unknown_level_of_MQTT_is_reported_as_unsupported()
    {
        var body = Concat(Str("MQTT"), [0x06, 0x02], U16(60), Str("c"));
        Assert.Null(MqttConnectPacket.Decode(0, body, out var unsupported));
        Assert.True(unsupported);
    }

    [Fact]
    public void An_unknown_protocol_name_is_a_protocol_error()
    {
        var body = Concat(Str("HTTP"), [0x04, 0x02], U16(60), Str("c"));
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, body, out _));
    }

    [Fact]
    public void The_reserved_connect_flag_set_is_malformed()
    {
        var body = Concat(Str("MQTT"), [0x04, 0x03], U16(60), Str("c"));
        var ex = Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, body, out _));
        Assert.Equal(MqttReasonCode.MalformedPacket, ex.ReasonCode);
    }

    [Theory]
    [InlineData(0x01)]
    [InlineData(0x0F)]
    public void Connect_fixed_header_flags_other_than_zero_are_malformed(byte flags)
    {
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(flags, ConnectBody(4, "c"), out _));
    }

    [Theory]
    [InlineData(0x18)] // will QoS 3
    [InlineData(0x08)] // will QoS 1 without will flag
    [InlineData(0x20)] // will retain without will flag
    public void Invalid_will_flags_are_malformed(byte flags)
    {
        var body = Concat(Str("MQTT"), [0x04, (byte)(flags | 0x02)], U16(60), Str("c"));
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, body, out _));
    }

    [Theory]
    [InlineData("a/+")]
    [InlineData("#")]
    [InlineData("")]
    public void A_will_topic_that_is_not_a_topic_name_is_refused(string willTopic)
    {
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, ConnectBody(4, "c", willTopic: willTopic), out _));
    }

    [Fact]
    public void A_client_id_that_is_not_utf8_is_malformed()
    {
        var body = Concat(Str("MQTT"), [0x04, 0x02], U16(60), Bin([0xC3, 0x28]));
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, body, out _));
    }

    [Fact]
    public void Trailing_bytes_after_the_connect_payload_are_malformed()
    {
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, Concat(ConnectBody(4, "c"), [0]), out _));
    }

    [Theory]
    [InlineData(new byte[] { 0x21, 0x00, 0x00 })]                   // receive maximum 0
    [InlineData(new byte[] { 0x27, 0x00, 0x00, 0x00, 0x00 })]       // maximum packet size 0
    [InlineData(new byte[] { 0x17, 0x02 })]                         // request problem information 2
    [InlineData(new byte[] { 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1 })] // session expiry twice
    [InlineData(new byte[] { 0x01, 0x00 })]                         // payload format indicator: not a CONNECT property
    [InlineData(new byte[] { 0x7F, 0x00 })]                         // unknown property
    public void Invalid_connect_properties_are_refused(byte[] properties)
    {
        var body = ConnectBody(5, "c", properties: Props(properties));
        Assert.Throws<MqttProtocolException>(() => MqttConnectPacket.Decode(0, body, out _));
    }

    [Fact]
    public void Every_truncation_of_connect_bodies_throws_only_protocol_exceptions()
    {
        var bodies = new[]
        {
            ConnectBody(4, "client", username: "u", password: [1, 2], willTopic: "w/t", willPayload: [9], willQos: 1, willRetain: true),
            ConnectBody(5, "client", properties: Props([0x11, 0, 0, 0, 10], [0x26, 0, 1, (byte)'k', 0, 1, (byte)'v']), username: "u", password: [1], willTopic: "w", willPayload: [1], willProperties: Props([0x18, 0, 0, 0, 1], [0x03, 0, 1, (byte)'x'])),
        };
        foreach (var body in bodies)
        {
            Assert.NotNull(MqttConnectPacket.Decode(0, body, out _));
            for (var length = 0; length < body.Length; length++)
            {
                var prefix = body[..length];
                var ex = Record.Exception(() => MqttConnectPacket.Decode(0, prefix, out _));
                Assert.True(ex is MqttProtocolException, $"prefix {length}/{body.Length} ({Hex(prefix)}) gave {ex?.GetType().Name ?? "no exception"}");
            }
        }
    }

    [Fact]
    public void A_user_property_in_connect_is_accepted_and_ignored()
    {
        var body = ConnectBody(5, "c", properties: Props([0x26, .. Str("k"), .. Str("v")]));
        Assert.Equal("c", MqttConnectPacket.Decode(0, body, out _)!.ClientId);
        Assert.Equal("v", Encoding.UTF8.GetString(Str("v")[2..]));
    }
}
