namespace Fieldline.Mqtt.Protocol;

/// <summary>One decoded MQTT 5.0 property: its id and its value as a number or as bytes.</summary>
internal readonly ref struct MqttProperty
{
    public MqttProperty(byte id, uint number, ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> secondBytes)
    {
        Id = id;
        Number = number;
        Bytes = bytes;
        SecondBytes = secondBytes;
    }

    public byte Id { get; }

    /// <summary>The value of a byte, two-byte, four-byte or variable byte integer property.</summary>
    public uint Number { get; }

    /// <summary>The value of a string or binary property; the name of a user property.</summary>
    public ReadOnlySpan<byte> Bytes { get; }

    /// <summary>The value of a user property.</summary>
    public ReadOnlySpan<byte> SecondBytes { get; }
}

/// <summary>
/// Iterates a properties block, decoding each value by the type its identifier defines and rejecting unknown
/// identifiers and single-valued properties that appear twice (MQTT-2.2.2-1 and the per-packet rules).
/// </summary>
internal ref struct MqttPropertyReader
{
    private MqttSpanReader _reader;
    private ulong _seen;

    public MqttPropertyReader(ReadOnlySpan<byte> properties)
    {
        _reader = new MqttSpanReader(properties);
        _seen = 0;
    }

    /// <summary>How many bytes of the block have been read: the end of the last property read.</summary>
    public readonly int Position => _reader.Position;

    public bool TryRead(out MqttProperty property)
    {
        if (_reader.End)
        {
            property = default;
            return false;
        }

        var id = _reader.ReadVariableByteInteger();
        if (id > 0x2A)
        {
            throw MqttProtocolException.Malformed($"Unknown property 0x{id:X2}.");
        }

        if (id is not (MqttPropertyId.UserProperty or MqttPropertyId.SubscriptionIdentifier))
        {
            var bit = 1UL << id;
            if ((_seen & bit) != 0)
            {
                throw MqttProtocolException.Protocol($"Property 0x{id:X2} appears twice.");
            }

            _seen |= bit;
        }

        switch (id)
        {
            case MqttPropertyId.PayloadFormatIndicator:
            case MqttPropertyId.RequestProblemInformation:
            case MqttPropertyId.RequestResponseInformation:
            case MqttPropertyId.MaximumQoS:
            case MqttPropertyId.RetainAvailable:
            case MqttPropertyId.WildcardSubscriptionAvailable:
            case MqttPropertyId.SubscriptionIdentifierAvailable:
            case MqttPropertyId.SharedSubscriptionAvailable:
                property = new MqttProperty((byte)id, _reader.ReadByte(), default, default);
                return true;
            case MqttPropertyId.ServerKeepAlive:
            case MqttPropertyId.ReceiveMaximum:
            case MqttPropertyId.TopicAliasMaximum:
            case MqttPropertyId.TopicAlias:
                property = new MqttProperty((byte)id, _reader.ReadUInt16(), default, default);
                return true;
            case MqttPropertyId.MessageExpiryInterval:
            case MqttPropertyId.SessionExpiryInterval:
            case MqttPropertyId.WillDelayInterval:
            case MqttPropertyId.MaximumPacketSize:
                property = new MqttProperty((byte)id, _reader.ReadUInt32(), default, default);
                return true;
            case MqttPropertyId.SubscriptionIdentifier:
                property = new MqttProperty((byte)id, (uint)_reader.ReadVariableByteInteger(), default, default);
                return true;
            case MqttPropertyId.ContentType:
            case MqttPropertyId.ResponseTopic:
            case MqttPropertyId.AssignedClientIdentifier:
            case MqttPropertyId.AuthenticationMethod:
            case MqttPropertyId.ResponseInformation:
            case MqttPropertyId.ServerReference:
            case MqttPropertyId.ReasonString:
                property = new MqttProperty((byte)id, 0, _reader.ReadUtf8String(), default);
                return true;
            case MqttPropertyId.CorrelationData:
            case MqttPropertyId.AuthenticationData:
                property = new MqttProperty((byte)id, 0, _reader.ReadBinary(), default);
                return true;
            case MqttPropertyId.UserProperty:
                var name = _reader.ReadUtf8String();
                property = new MqttProperty((byte)id, 0, name, _reader.ReadUtf8String());
                return true;
            default:
                throw MqttProtocolException.Malformed($"Unknown property 0x{id:X2}.");
        }
    }
}
