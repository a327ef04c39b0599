using System.Buffers;
using System.Text;

namespace Fieldline.Mqtt.Protocol;

/// <summary>What a server announces in CONNACK on 5.0.</summary>
internal readonly record struct MqttServerCapabilities(uint MaximumPacketSize, ushort ReceiveMaximum, ushort ServerKeepAlive = 0, ushort TopicAliasMaximum = 0);

/// <summary>
/// The properties of an outgoing PUBLISH that differ per delivery, written after the message's own properties:
/// the remaining Message Expiry Interval, the Subscription Identifiers of the matching subscriptions, and the
/// Topic Alias (with <see cref="OmitTopic"/> when the alias is already known to the client).
/// </summary>
internal readonly struct MqttPublishExtras
{
    public MqttPublishExtras(uint? messageExpirySeconds, SubscriptionIdentifiers subscriptionIdentifiers, ushort topicAlias = 0, bool omitTopic = false)
    {
        MessageExpirySeconds = messageExpirySeconds;
        SubscriptionIdentifiers = subscriptionIdentifiers;
        TopicAlias = topicAlias;
        OmitTopic = omitTopic;
    }

    public uint? MessageExpirySeconds { get; }

    public SubscriptionIdentifiers SubscriptionIdentifiers { get; }

    public ushort TopicAlias { get; }

    public bool OmitTopic { get; }

    public MqttPublishExtras WithTopicAlias(ushort alias, bool omitTopic) => new(MessageExpirySeconds, SubscriptionIdentifiers, alias, omitTopic);

    public int Length
    {
        get
        {
            var length = MessageExpirySeconds.HasValue ? 5 : 0;
            if (TopicAlias != 0)
            {
                length += 3;
            }

            foreach (var id in SubscriptionIdentifiers)
            {
                length += 1 + MqttSpanWriter.VariableByteIntegerSize((int)id);
            }

            return length;
        }
    }
}

/// <summary>
/// The Subscription Identifiers sent with one delivery: usually none or one, so one is held inline and only a
/// client with several matching subscriptions that carry identifiers costs an array.
/// </summary>
internal readonly struct SubscriptionIdentifiers
{
    private readonly uint _single;
    private readonly uint[]? _many;

    public SubscriptionIdentifiers(uint single) => _single = single;

    private SubscriptionIdentifiers(uint[] many) => _many = many;

    public bool IsEmpty => _single == 0 && _many is null;

    public static SubscriptionIdentifiers From(IReadOnlyList<uint> ids) => ids.Count switch
    {
        0 => default,
        1 => new SubscriptionIdentifiers(ids[0]),
        _ => new SubscriptionIdentifiers([.. ids]),
    };

    public SubscriptionIdentifiers Add(uint id)
    {
        if (id == 0)
        {
            return this;
        }

        if (_many is not null)
        {
            return _many.Contains(id) ? this : new SubscriptionIdentifiers([.. _many, id]);
        }

        return _single == 0 ? new SubscriptionIdentifiers(id) : _single == id ? this : new SubscriptionIdentifiers([_single, id]);
    }

    public uint[] ToArray() => _many is not null ? [.. _many] : _single == 0 ? [] : [_single];

    public Enumerator GetEnumerator() => new(this);

    public struct Enumerator(SubscriptionIdentifiers ids)
    {
        private int _index = -1;

        public readonly uint Current => ids._many is { } many ? many[_index] : ids._single;

        public bool MoveNext()
        {
            _index++;
            return ids._many is { } many ? _index < many.Length : _index == 0 && ids._single != 0;
        }
    }
}

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
            // Maximum Packet Size, Receive Maximum and Topic Alias Maximum; Retain, Wildcard, Shared Subscription and
            // Subscription Identifier Available are all 1, the default, so they are omitted, as is Maximum QoS 2.
            propertiesLength += 5 + 3;
            if (capabilities.TopicAliasMaximum > 0)
            {
                propertiesLength += 3;
            }

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
            if (capabilities.TopicAliasMaximum > 0)
            {
                writer.WriteByte(MqttPropertyId.TopicAliasMaximum);
                writer.WriteUInt16(capabilities.TopicAliasMaximum);
            }

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

    /// <summary>The size of a PUBLISH packet as WritePublish writes it (<paramref name="propertiesLength"/> includes any extras).</summary>
    public static int PublishSize(MqttProtocolVersion version, int topicLength, int payloadLength, byte qos, int propertiesLength)
    {
        var remaining = PublishRemainingLength(version, topicLength, payloadLength, qos, propertiesLength);
        return 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
    }

    public static void WritePublish(IBufferWriter<byte> output, MqttProtocolVersion version, ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, byte qos, bool retain, bool dup, ushort packetId, ReadOnlySpan<byte> properties) =>
        WritePublish(output, version, topic, payload, qos, retain, dup, packetId, properties, default);

    /// <summary>Writes a PUBLISH: the message's own properties, then the per-delivery <paramref name="extras"/> (5.0 only).</summary>
    public static void WritePublish(IBufferWriter<byte> output, MqttProtocolVersion version, ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, byte qos, bool retain, bool dup, ushort packetId, ReadOnlySpan<byte> properties, in MqttPublishExtras extras)
    {
        var extrasLength = 0;
        if (version == MqttProtocolVersion.V311)
        {
            properties = default;
        }
        else
        {
            extrasLength = extras.Length;
            if (extras.OmitTopic)
            {
                topic = default;
            }
        }

        var propertiesLength = properties.Length + extrasLength;
        var remaining = PublishRemainingLength(version, topic.Length, payload.Length, qos, propertiesLength);
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
            writer.WriteVariableByteInteger(propertiesLength);
            writer.WriteBytes(properties);
            if (extrasLength > 0)
            {
                if (extras.MessageExpirySeconds is { } expiry)
                {
                    writer.WriteByte(MqttPropertyId.MessageExpiryInterval);
                    writer.WriteUInt32(expiry);
                }

                if (extras.TopicAlias != 0)
                {
                    writer.WriteByte(MqttPropertyId.TopicAlias);
                    writer.WriteUInt16(extras.TopicAlias);
                }

                foreach (var id in extras.SubscriptionIdentifiers)
                {
                    writer.WriteByte(MqttPropertyId.SubscriptionIdentifier);
                    writer.WriteVariableByteInteger((int)id);
                }
            }
        }

        writer.WriteBytes(payload);
        output.Advance(size);
    }

    /// <summary>An AUTH packet (5.0 enhanced authentication): continue (0x18), re-authenticate (0x19) or success.</summary>
    public static void WriteAuth(IBufferWriter<byte> output, MqttReasonCode reason, string method, ReadOnlySpan<byte> data)
    {
        var methodLength = Encoding.UTF8.GetByteCount(method);
        var propertiesLength = 3 + methodLength + (data.IsEmpty ? 0 : 3 + data.Length);
        var remaining = 1 + MqttSpanWriter.VariableByteIntegerSize(propertiesLength) + propertiesLength;
        var size = 1 + MqttSpanWriter.VariableByteIntegerSize(remaining) + remaining;
        var writer = new MqttSpanWriter(output.GetSpan(size));
        writer.WriteByte(0xF0);
        writer.WriteVariableByteInteger(remaining);
        writer.WriteByte((byte)reason);
        writer.WriteVariableByteInteger(propertiesLength);
        writer.WriteByte(MqttPropertyId.AuthenticationMethod);
        WriteString(ref writer, method);
        if (!data.IsEmpty)
        {
            writer.WriteByte(MqttPropertyId.AuthenticationData);
            writer.WriteBinary(data);
        }

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
        // Limits (quota, connect rate) mean "try later": 3.1.1 has only Server unavailable for that.
        MqttReasonCode.ServerUnavailable or MqttReasonCode.ServerBusy or MqttReasonCode.ServerShuttingDown
            or MqttReasonCode.QuotaExceeded or MqttReasonCode.ConnectionRateExceeded => 0x03,
        _ => 0x05,
    };
}
