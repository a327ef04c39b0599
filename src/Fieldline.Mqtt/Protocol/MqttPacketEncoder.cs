using System.Buffers;
using System.Text;

namespace Fieldline.Mqtt.Protocol;

/// <summary>What a server announces in CONNACK on 5.0.</summary>
internal readonly record struct MqttServerCapabilities(uint MaximumPacketSize, ushort ReceiveMaximum, ushort ServerKeepAlive = 0);

/// <summary>
/// Encoders for the packets a server sends. Each computes the exact size first, takes one span from the writer
/// and fills it, so a packet costs one GetSpan/Advance and no allocation.
/// </summary>
internal static class MqttPacketEncoder
{
    public static void WriteConnAck(IBufferWriter<byte> output, MqttProtocolVersion version, bool sessionPresent, MqttReasonCode reason, string? assignedClientId, MqttServerCapabilities capabilities, string? reasonString = null)
    {
        if (version == MqttProtocolVersion.V311)
        {
            var span = output.GetSpan(4);
            span[0] = 0x20;
            span[1] = 2;
            span[2] = sessionPresent ? (byte)1 : (byte)0;
            span[3] = ToV311ConnectReturnCode(reason);
            output.Advance(4);
            return;
        }

        var assigned = assignedClientId is null ? 0 : 3 + Encoding.UTF8.GetByteCount(assignedClientId);
        var reasonStringLength = reasonString is null ? 0 : 3 + Encoding.UTF8.GetByteCount(reasonString);
        var propertiesLength = assigned + reasonStringLength;
        if (reason == MqttReasonCode.Success)
        {
            // Maximum Packet Size, Receive Maximum, Topic Alias Maximum (0: default, omitted), Retain Available (1: default),
            // Shared Subscription Available 0, Subscription Identifiers Available 0, Wildcard Subscription Available (1: default).
            propertiesLength += 5 + 3 + 2 + 2;
            if (capabilities.ServerKeepAlive > 0)
            {
                propertiesLength += 3;
            }
        }

        var remaining = 2 + MqttSpanWriter.VariableByteIntegerSize(propertiesLength) + propertiesLength;
        var size = 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
        var writer = new MqttSpanWriter(output.GetSpan(size));
        writer.WriteByte(0x20);
        writer.WriteVariableByteInteger(remaining);
        writer.WriteByte(sessionPresent ? (byte)1 : (byte)0);
        writer.WriteByte((byte)reason);
        writer.WriteVariableByteInteger(propertiesLength);
        if (reason == MqttReasonCode.Success)
        {
            writer.WriteByte(MqttPropertyId.MaximumPacketSize);
            writer.WriteUInt32(capabilities.MaximumPacketSize);
            writer.WriteByte(MqttPropertyId.ReceiveMaximum);
            writer.WriteUInt16(capabilities.ReceiveMaximum);
            writer.WriteByte(MqttPropertyId.SharedSubscriptionAvailable);
            writer.WriteByte(0);
            writer.WriteByte(MqttPropertyId.SubscriptionIdentifierAvailable);
            writer.WriteByte(0);
            if (capabilities.ServerKeepAlive > 0)
            {
                writer.WriteByte(MqttPropertyId.ServerKeepAlive);
                writer.WriteUInt16(capabilities.ServerKeepAlive);
            }
        }

        if (assignedClientId is not null)
        {
            writer.WriteByte(MqttPropertyId.AssignedClientIdentifier);
            WriteString(ref writer, assignedClientId);
        }

        if (reasonString is not null)
        {
            writer.WriteByte(MqttPropertyId.ReasonString);
            WriteString(ref writer, reasonString);
        }

        output.Advance(size);
    }

    /// <summary>PUBACK, PUBREC, PUBREL or PUBCOMP.</summary>
    public static void WriteAck(IBufferWriter<byte> output, MqttPacketType type, ushort packetId, MqttProtocolVersion version, MqttReasonCode reason)
    {
        var withReason = version == MqttProtocolVersion.V500 && reason != MqttReasonCode.Success;
        var size = withReason ? 5 : 4;
        var span = output.GetSpan(size);
        span[0] = (byte)(((byte)type << 4) | (type == MqttPacketType.PubRel ? 0x02 : 0x00));
        span[1] = (byte)(size - 2);
        span[2] = (byte)(packetId >> 8);
        span[3] = (byte)packetId;
        if (withReason)
        {
            span[4] = (byte)reason;
        }

        output.Advance(size);
    }

    public static void WriteSubAck(IBufferWriter<byte> output, MqttProtocolVersion version, ushort packetId, ReadOnlySpan<MqttReasonCode> reasons)
    {
        var propertiesPart = version == MqttProtocolVersion.V500 ? 1 : 0;
        var remaining = 2 + propertiesPart + reasons.Length;
        var size = 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
        var writer = new MqttSpanWriter(output.GetSpan(size));
        writer.WriteByte(0x90);
        writer.WriteVariableByteInteger(remaining);
        writer.WriteUInt16(packetId);
        if (propertiesPart == 1)
        {
            writer.WriteByte(0);
        }

        foreach (var reason in reasons)
        {
            writer.WriteByte(version == MqttProtocolVersion.V500 || (byte)reason <= 2 ? (byte)reason : (byte)0x80);
        }

        output.Advance(size);
    }

    public static void WriteUnsubAck(IBufferWriter<byte> output, MqttProtocolVersion version, ushort packetId, ReadOnlySpan<MqttReasonCode> reasons)
    {
        if (version == MqttProtocolVersion.V311)
        {
            var span = output.GetSpan(4);
            span[0] = 0xB0;
            span[1] = 2;
            span[2] = (byte)(packetId >> 8);
            span[3] = (byte)packetId;
            output.Advance(4);
            return;
        }

        var remaining = 3 + reasons.Length;
        var size = 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
        var writer = new MqttSpanWriter(output.GetSpan(size));
        writer.WriteByte(0xB0);
        writer.WriteVariableByteInteger(remaining);
        writer.WriteUInt16(packetId);
        writer.WriteByte(0);
        foreach (var reason in reasons)
        {
            writer.WriteByte((byte)reason);
        }

        output.Advance(size);
    }

    public static void WritePingResp(IBufferWriter<byte> output)
    {
        var span = output.GetSpan(2);
        span[0] = 0xD0;
        span[1] = 0;
        output.Advance(2);
    }

    /// <summary>A server DISCONNECT; only MQTT 5.0 has one (3.1.1 servers just close).</summary>
    public static void WriteDisconnect(IBufferWriter<byte> output, MqttReasonCode reason, string? reasonString)
    {
        var propertiesLength = reasonString is null ? 0 : 3 + Encoding.UTF8.GetByteCount(reasonString);
        var remaining = 1 + MqttSpanWriter.VariableByteIntegerSize(propertiesLength) + propertiesLength;
        var size = 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
        var writer = new MqttSpanWriter(output.GetSpan(size));
        writer.WriteByte(0xE0);
        writer.WriteVariableByteInteger(remaining);
        writer.WriteByte((byte)reason);
        writer.WriteVariableByteInteger(propertiesLength);
        if (reasonString is not null)
        {
            writer.WriteByte(MqttPropertyId.ReasonString);
            WriteString(ref writer, reasonString);
        }

        output.Advance(size);
    }

    /// <summary>The size of a PUBLISH packet as <see cref="WritePublish"/> writes it.</summary>
    public static int PublishSize(MqttProtocolVersion version, int topicLength, int payloadLength, byte qos, int propertiesLength)
    {
        var remaining = PublishRemainingLength(version, topicLength, payloadLength, qos, propertiesLength);
        return 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
    }

    public static void WritePublish(IBufferWriter<byte> output, MqttProtocolVersion version, ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, byte qos, bool retain, bool dup, ushort packetId, ReadOnlySpan<byte> properties)
    {
        if (version == MqttProtocolVersion.V311)
        {
            properties = default;
        }

        var remaining = PublishRemainingLength(version, topic.Length, payload.Length, qos, properties.Length);
        var size = 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
        var writer = new MqttSpanWriter(output.GetSpan(size));
        writer.WriteByte((byte)(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)));
        writer.WriteVariableByteInteger(remaining);
        writer.WriteBinary(topic);
        if (qos > 0)
        {
            writer.WriteUInt16(packetId);
        }

        if (version == MqttProtocolVersion.V500)
        {
            writer.WriteVariableByteInteger(properties.Length);
            writer.WriteBytes(properties);
        }

        writer.WriteBytes(payload);
        output.Advance(size);
    }

    private static int PublishRemainingLength(MqttProtocolVersion version, int topicLength, int payloadLength, byte qos, int propertiesLength)
    {
        var remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payloadLength;
        if (version == MqttProtocolVersion.V500)
        {
            remaining += MqttSpanWriter.VariableByteIntegerSize(propertiesLength) + propertiesLength;
        }

        return remaining;
    }

    private static void WriteString(ref MqttSpanWriter writer, string value)
    {
        Span<byte> buffer = stackalloc byte[Encoding.UTF8.GetMaxByteCount(Math.Min(value.Length, 256))];
        if (value.Length <= 256)
        {
            var length = Encoding.UTF8.GetBytes(value, buffer);
            writer.WriteBinary(buffer[..length]);
        }
        else
        {
            writer.WriteBinary(Encoding.UTF8.GetBytes(value));
        }
    }

    /// <summary>MQTT 3.1.1 CONNACK return codes (3.2.2.3).</summary>
    private static byte ToV311ConnectReturnCode(MqttReasonCode reason) => reason switch
    {
        MqttReasonCode.Success => 0x00,
        MqttReasonCode.UnsupportedProtocolVersion => 0x01,
        MqttReasonCode.ClientIdentifierNotValid => 0x02,
        MqttReasonCode.ServerUnavailable or MqttReasonCode.ServerBusy or MqttReasonCode.ServerShuttingDown => 0x03,
        _ => 0x05,
    };
}
