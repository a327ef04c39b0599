using System.Text;

namespace Fieldline.Mqtt.Protocol;

/// <summary>A decoded SUBSCRIBE packet.</summary>
internal sealed record MqttSubscribePacket(ushort PacketId, IReadOnlyList<MqttTopicSubscription> Subscriptions, uint SubscriptionIdentifier);

/// <summary>One topic filter of a SUBSCRIBE with its options byte decoded.</summary>
internal readonly record struct MqttTopicSubscription(string Filter, byte MaximumQoS, bool NoLocal, bool RetainAsPublished, byte RetainHandling);

/// <summary>A decoded AUTH packet.</summary>
internal readonly record struct MqttAuthPacket(MqttReasonCode Reason, string? Method, ReadOnlyMemory<byte> Data);

/// <summary>A decoded UNSUBSCRIBE packet.</summary>
internal sealed record MqttUnsubscribePacket(ushort PacketId, IReadOnlyList<string> Filters);

/// <summary>Decoders for the packets a server receives, other than CONNECT.</summary>
internal static class MqttPacketDecoder
{
    /// <summary>Decodes a PUBLISH body without copying: the result's memory is a slice of <paramref name="body"/>.</summary>
    public static MqttInboundPublish DecodePublish(byte flags, ReadOnlyMemory<byte> body, MqttProtocolVersion version)
    {
        var qos = (byte)((flags >> 1) & 0x03);
        if (qos == 3)
        {
            throw MqttProtocolException.Malformed("PUBLISH with QoS 3.");
        }

        var dup = (flags & 0x08) != 0;
        if (dup && qos == 0 && version == MqttProtocolVersion.V500)
        {
            throw MqttProtocolException.Protocol("DUP set on a QoS 0 PUBLISH.");
        }

        var reader = new MqttSpanReader(body.Span);
        var topicStart = reader.Position + 2;
        var topic = reader.ReadUtf8String();
        if (topic.IndexOfAny((byte)'+', (byte)'#') >= 0)
        {
            throw new MqttProtocolException(MqttReasonCode.TopicNameInvalid, "Topic name contains a wildcard.");
        }

        ushort packetId = 0;
        if (qos > 0)
        {
            packetId = reader.ReadUInt16();
            if (packetId == 0)
            {
                throw MqttProtocolException.Malformed("Packet identifier 0.");
            }
        }

        var propertiesStart = reader.Position;
        var propertiesLength = 0;
        ushort topicAlias = 0;
        uint? messageExpiry = null;
        var utf8Payload = false;
        Range aliasBytes = default;
        Range expiryBytes = default;
        if (version == MqttProtocolVersion.V500)
        {
            propertiesLength = reader.ReadVariableByteInteger();
            propertiesStart = reader.Position;
            var properties = new MqttPropertyReader(reader.Take(propertiesLength));
            for (var start = 0; properties.TryRead(out var property); start = properties.Position)
            {
                switch (property.Id)
                {
                    case MqttPropertyId.PayloadFormatIndicator:
                        if (property.Number > 1)
                        {
                            throw MqttProtocolException.Protocol("Payload Format Indicator not 0 or 1.");
                        }

                        utf8Payload = property.Number == 1;
                        break;
                    case MqttPropertyId.MessageExpiryInterval:
                        messageExpiry = property.Number;
                        expiryBytes = start..properties.Position;
                        break;
                    case MqttPropertyId.TopicAlias:
                        if (property.Number == 0)
                        {
                            throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, "Topic Alias 0.");
                        }

                        topicAlias = (ushort)property.Number;
                        aliasBytes = start..properties.Position;
                        break;
                    case MqttPropertyId.ResponseTopic:
                        if (property.Bytes.IndexOfAny((byte)'+', (byte)'#') >= 0)
                        {
                            throw MqttProtocolException.Protocol("Response topic contains a wildcard.");
                        }

                        break;
                    case MqttPropertyId.ContentType:
                    case MqttPropertyId.CorrelationData:
                    case MqttPropertyId.UserProperty:
                        break;
                    default:
                        throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in PUBLISH.");
                }
            }
        }

        if (topic.IsEmpty && topicAlias == 0)
        {
            // An empty topic is allowed only with a Topic Alias (MQTT-3.3.2-1, 3.3.2.3.4).
            throw MqttProtocolException.Protocol("Empty topic name.");
        }

        var payloadStart = reader.Position;
        return new MqttInboundPublish(
            body.Slice(topicStart, topic.Length),
            body[payloadStart..],
            body.Slice(propertiesStart, propertiesLength),
            qos,
            (flags & 0x01) != 0,
            dup,
            packetId)
        {
            TopicAlias = topicAlias,
            MessageExpirySeconds = messageExpiry,
            IsUtf8Payload = utf8Payload,
            AliasPropertyRange = aliasBytes,
            ExpiryPropertyRange = expiryBytes,
        };
    }

    /// <summary>
    /// Copies a PUBLISH properties block into <paramref name="destination"/> without the Topic Alias and Message
    /// Expiry Interval properties, which the broker writes per delivery; returns the length written.
    /// </summary>
    public static int StripDeliveryProperties(ReadOnlySpan<byte> properties, Range first, Range second, Span<byte> destination)
    {
        var (firstStart, firstLength) = first.GetOffsetAndLength(properties.Length);
        var (secondStart, secondLength) = second.GetOffsetAndLength(properties.Length);
        if (secondStart < firstStart)
        {
            (firstStart, firstLength, secondStart, secondLength) = (secondStart, secondLength, firstStart, firstLength);
        }

        var written = 0;
        var position = 0;
        foreach (var (start, length) in (ReadOnlySpan<(int, int)>)[(firstStart, firstLength), (secondStart, secondLength)])
        {
            if (length == 0)
            {
                continue;
            }

            properties[position..start].CopyTo(destination[written..]);
            written += start - position;
            position = start + length;
        }

        properties[position..].CopyTo(destination[written..]);
        return written + properties.Length - position;
    }

    public static MqttSubscribePacket DecodeSubscribe(byte flags, ReadOnlySpan<byte> body, MqttProtocolVersion version)
    {
        if (flags != 0x02)
        {
            throw MqttProtocolException.Malformed("SUBSCRIBE fixed header flags must be 0010.");
        }

        var reader = new MqttSpanReader(body);
        var packetId = ReadPacketId(ref reader);
        uint subscriptionId = 0;
        if (version == MqttProtocolVersion.V500)
        {
            var properties = new MqttPropertyReader(reader.Take(reader.ReadVariableByteInteger()));
            while (properties.TryRead(out var property))
            {
                switch (property.Id)
                {
                    case MqttPropertyId.SubscriptionIdentifier when subscriptionId == 0 && property.Number > 0:
                        subscriptionId = property.Number;
                        break;
                    case MqttPropertyId.UserProperty:
                        break;
                    default:
                        throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in SUBSCRIBE.");
                }
            }
        }

        var subscriptions = new List<MqttTopicSubscription>();
        while (!reader.End)
        {
            var filter = Encoding.UTF8.GetString(reader.ReadUtf8String());
            var options = reader.ReadByte();
            var reservedMask = version == MqttProtocolVersion.V500 ? 0xC0 : 0xFC;
            if ((options & reservedMask) != 0 || (options & 0x03) == 3 || ((options >> 4) & 0x03) == 3)
            {
                throw MqttProtocolException.Malformed("Invalid subscription options.");
            }

            subscriptions.Add(new MqttTopicSubscription(
                filter,
                (byte)(options & 0x03),
                version == MqttProtocolVersion.V500 && (options & 0x04) != 0,
                version == MqttProtocolVersion.V500 && (options & 0x08) != 0,
                version == MqttProtocolVersion.V500 ? (byte)((options >> 4) & 0x03) : (byte)0));
        }

        if (subscriptions.Count == 0)
        {
            throw MqttProtocolException.Protocol("SUBSCRIBE without a topic filter.");
        }

        return new MqttSubscribePacket(packetId, subscriptions, subscriptionId);
    }

    public static MqttUnsubscribePacket DecodeUnsubscribe(byte flags, ReadOnlySpan<byte> body, MqttProtocolVersion version)
    {
        if (flags != 0x02)
        {
            throw MqttProtocolException.Malformed("UNSUBSCRIBE fixed header flags must be 0010.");
        }

        var reader = new MqttSpanReader(body);
        var packetId = ReadPacketId(ref reader);
        if (version == MqttProtocolVersion.V500)
        {
            var properties = new MqttPropertyReader(reader.Take(reader.ReadVariableByteInteger()));
            while (properties.TryRead(out var property))
            {
                if (property.Id != MqttPropertyId.UserProperty)
                {
                    throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in UNSUBSCRIBE.");
                }
            }
        }

        var filters = new List<string>();
        while (!reader.End)
        {
            filters.Add(Encoding.UTF8.GetString(reader.ReadUtf8String()));
        }

        if (filters.Count == 0)
        {
            throw MqttProtocolException.Protocol("UNSUBSCRIBE without a topic filter.");
        }

        return new MqttUnsubscribePacket(packetId, filters);
    }

    /// <summary>Decodes PUBACK, PUBREC, PUBREL or PUBCOMP: the packet id and, on 5.0, an optional reason code.</summary>
    public static ushort DecodeAck(byte flags, byte expectedFlags, ReadOnlySpan<byte> body, MqttProtocolVersion version, out MqttReasonCode reasonCode)
    {
        if (flags != expectedFlags)
        {
            throw MqttProtocolException.Malformed("Invalid fixed header flags.");
        }

        var reader = new MqttSpanReader(body);
        var packetId = ReadPacketId(ref reader);
        reasonCode = MqttReasonCode.Success;
        if (version == MqttProtocolVersion.V500 && !reader.End)
        {
            reasonCode = (MqttReasonCode)reader.ReadByte();
            if (!reader.End)
            {
                var properties = new MqttPropertyReader(reader.Take(reader.ReadVariableByteInteger()));
                while (properties.TryRead(out var property))
                {
                    if (property.Id is not (MqttPropertyId.ReasonString or MqttPropertyId.UserProperty))
                    {
                        throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in an acknowledgement.");
                    }
                }
            }
        }

        if (!reader.End)
        {
            throw MqttProtocolException.Malformed("Trailing bytes in acknowledgement.");
        }

        return packetId;
    }

    /// <summary>Decodes DISCONNECT: the reason code and, on 5.0, a new session expiry interval if present.</summary>
    public static MqttReasonCode DecodeDisconnect(byte flags, ReadOnlySpan<byte> body, MqttProtocolVersion version, out uint? sessionExpiry)
    {
        sessionExpiry = null;
        if (flags != 0)
        {
            throw MqttProtocolException.Malformed("DISCONNECT fixed header flags must be 0.");
        }

        if (version == MqttProtocolVersion.V311)
        {
            if (!body.IsEmpty)
            {
                throw MqttProtocolException.Malformed("DISCONNECT has a body.");
            }

            return MqttReasonCode.Success;
        }

        var reader = new MqttSpanReader(body);
        if (reader.End)
        {
            return MqttReasonCode.Success;
        }

        var reason = (MqttReasonCode)reader.ReadByte();
        if (!reader.End)
        {
            var properties = new MqttPropertyReader(reader.Take(reader.ReadVariableByteInteger()));
            while (properties.TryRead(out var property))
            {
                switch (property.Id)
                {
                    case MqttPropertyId.SessionExpiryInterval:
                        sessionExpiry = property.Number;
                        break;
                    case MqttPropertyId.ReasonString:
                    case MqttPropertyId.UserProperty:
                        break;
                    default:
                        throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in DISCONNECT.");
                }
            }
        }

        if (!reader.End)
        {
            throw MqttProtocolException.Malformed("Trailing bytes in DISCONNECT.");
        }

        return reason;
    }

    /// <summary>Decodes AUTH (5.0): reason code, authentication method and data.</summary>
    public static MqttAuthPacket DecodeAuth(byte flags, ReadOnlySpan<byte> body)
    {
        if (flags != 0)
        {
            throw MqttProtocolException.Malformed("AUTH fixed header flags must be 0.");
        }

        var reader = new MqttSpanReader(body);
        if (reader.End)
        {
            return new MqttAuthPacket(MqttReasonCode.Success, null, default);
        }

        var reason = (MqttReasonCode)reader.ReadByte();
        if (reason is not (MqttReasonCode.Success or MqttReasonCode.ContinueAuthentication or MqttReasonCode.ReAuthenticate))
        {
            throw MqttProtocolException.Protocol("Invalid AUTH reason code.");
        }

        string? method = null;
        byte[]? data = null;
        if (!reader.End)
        {
            var properties = new MqttPropertyReader(reader.Take(reader.ReadVariableByteInteger()));
            while (properties.TryRead(out var property))
            {
                switch (property.Id)
                {
                    case MqttPropertyId.AuthenticationMethod:
                        method = Encoding.UTF8.GetString(property.Bytes);
                        break;
                    case MqttPropertyId.AuthenticationData:
                        data = property.Bytes.ToArray();
                        break;
                    case MqttPropertyId.ReasonString:
                    case MqttPropertyId.UserProperty:
                        break;
                    default:
                        throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in AUTH.");
                }
            }
        }

        if (!reader.End)
        {
            throw MqttProtocolException.Malformed("Trailing bytes in AUTH.");
        }

        return new MqttAuthPacket(reason, method, data);
    }

    private static ushort ReadPacketId(ref MqttSpanReader reader)
    {
        var packetId = reader.ReadUInt16();
        if (packetId == 0)
        {
            throw MqttProtocolException.Malformed("Packet identifier 0.");
        }

        return packetId;
    }
}
