using System.Text;

namespace Fieldline.Mqtt.Protocol;

/// <summary>A decoded CONNECT packet. Allocated once per connection, so it holds strings and arrays.</summary>
internal sealed class MqttConnectPacket
{
    public MqttProtocolVersion ProtocolVersion { get; init; }

    public bool CleanStart { get; init; }

    public ushort KeepAliveSeconds { get; init; }

    public string ClientId { get; init; } = "";

    public string? Username { get; init; }

    public byte[]? Password { get; init; }

    public MqttApplicationMessage? Will { get; init; }

    public uint WillDelaySeconds { get; init; }

    /// <summary>The will's Message Expiry Interval, counted from when the will is published.</summary>
    public uint? WillMessageExpirySeconds { get; init; }

    /// <summary>How many topic aliases the client accepts from the server (0: none).</summary>
    public ushort TopicAliasMaximum { get; init; }

    public ReadOnlyMemory<byte> AuthenticationData { get; init; }

    public uint SessionExpirySeconds { get; init; }

    public ushort ReceiveMaximum { get; init; } = ushort.MaxValue;

    public uint MaximumPacketSize { get; init; }

    public bool RequestProblemInformation { get; init; } = true;

    public string? AuthenticationMethod { get; init; }

    private static ReadOnlySpan<byte> MqttName => "MQTT"u8;

    /// <summary>
    /// Decodes a CONNECT body. An unsupported protocol level is reported through <paramref name="unsupportedVersion"/>
    /// instead of an exception, because the server must answer it with a CONNACK (MQTT-3.1.2-2).
    /// </summary>
    public static MqttConnectPacket? Decode(byte flags, ReadOnlySpan<byte> body, out bool unsupportedVersion)
    {
        unsupportedVersion = false;
        if (flags != 0)
        {
            throw MqttProtocolException.Malformed("CONNECT fixed header flags must be 0.");
        }

        var reader = new MqttSpanReader(body);
        var name = reader.ReadBinary();
        var level = reader.ReadByte();
        if (!name.SequenceEqual(MqttName) || level is not (4 or 5))
        {
            // "MQIsdp" level 3 (MQTT 3.1) and unknown levels get "unacceptable protocol version".
            if (name.SequenceEqual("MQIsdp"u8) || name.SequenceEqual(MqttName))
            {
                unsupportedVersion = true;
                return null;
            }

            throw MqttProtocolException.Protocol("Unknown protocol name.");
        }

        var version = (MqttProtocolVersion)level;
        var connectFlags = reader.ReadByte();
        if ((connectFlags & 0x01) != 0)
        {
            throw MqttProtocolException.Malformed("CONNECT reserved flag must be 0.");
        }

        var cleanStart = (connectFlags & 0x02) != 0;
        var willFlag = (connectFlags & 0x04) != 0;
        var willQos = (byte)((connectFlags >> 3) & 0x03);
        var willRetain = (connectFlags & 0x20) != 0;
        var passwordFlag = (connectFlags & 0x40) != 0;
        var usernameFlag = (connectFlags & 0x80) != 0;
        if (willQos == 3)
        {
            throw MqttProtocolException.Malformed("Will QoS 3.");
        }

        if (!willFlag && (willQos != 0 || willRetain))
        {
            throw MqttProtocolException.Malformed("Will QoS and retain must be 0 without a will.");
        }

        if (version == MqttProtocolVersion.V311 && passwordFlag && !usernameFlag)
        {
            throw MqttProtocolException.Malformed("Password without user name.");
        }

        var keepAlive = reader.ReadUInt16();

        uint sessionExpiry = 0;
        ushort receiveMaximum = ushort.MaxValue;
        uint maxPacketSize = 0;
        var requestProblemInformation = true;
        string? authenticationMethod = null;
        byte[]? authenticationData = null;
        ushort topicAliasMaximum = 0;
        if (version == MqttProtocolVersion.V500)
        {
            var properties = new MqttPropertyReader(reader.Take(reader.ReadVariableByteInteger()));
            while (properties.TryRead(out var property))
            {
                switch (property.Id)
                {
                    case MqttPropertyId.SessionExpiryInterval:
                        sessionExpiry = property.Number;
                        break;
                    case MqttPropertyId.ReceiveMaximum:
                        if (property.Number == 0)
                        {
                            throw MqttProtocolException.Protocol("Receive Maximum 0.");
                        }

                        receiveMaximum = (ushort)property.Number;
                        break;
                    case MqttPropertyId.MaximumPacketSize:
                        if (property.Number == 0)
                        {
                            throw MqttProtocolException.Protocol("Maximum Packet Size 0.");
                        }

                        maxPacketSize = property.Number;
                        break;
                    case MqttPropertyId.RequestProblemInformation:
                    case MqttPropertyId.RequestResponseInformation:
                        if (property.Number > 1)
                        {
                            throw MqttProtocolException.Protocol("Request information flag not 0 or 1.");
                        }

                        if (property.Id == MqttPropertyId.RequestProblemInformation)
                        {
                            requestProblemInformation = property.Number == 1;
                        }

                        break;
                    case MqttPropertyId.AuthenticationMethod:
                        authenticationMethod = Encoding.UTF8.GetString(property.Bytes);
                        break;
                    case MqttPropertyId.TopicAliasMaximum:
                        topicAliasMaximum = (ushort)property.Number;
                        break;
                    case MqttPropertyId.AuthenticationData:
                        authenticationData = property.Bytes.ToArray();
                        break;
                    case MqttPropertyId.UserProperty:
                        break;
                    default:
                        throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in CONNECT.");
                }
            }
        }

        var clientId = Encoding.UTF8.GetString(reader.ReadUtf8String());

        MqttApplicationMessage? will = null;
        uint willDelay = 0;
        uint? willExpiry = null;
        if (willFlag)
        {
            byte[] willPublishProperties = [];
            if (version == MqttProtocolVersion.V500)
            {
                var willProperties = reader.Take(reader.ReadVariableByteInteger());
                var properties = new MqttPropertyReader(willProperties);

                // Will Delay Interval belongs to the CONNECT, not to the PUBLISH the will becomes, and the broker
                // writes the Message Expiry Interval per delivery: both are cut out of the forwarded properties.
                Range willDelayBytes = default;
                Range willExpiryBytes = default;
                for (var start = 0; properties.TryRead(out var property); start = properties.Position)
                {
                    switch (property.Id)
                    {
                        case MqttPropertyId.WillDelayInterval:
                            willDelay = property.Number;
                            willDelayBytes = start..properties.Position;
                            break;
                        case MqttPropertyId.MessageExpiryInterval:
                            willExpiry = property.Number;
                            willExpiryBytes = start..properties.Position;
                            break;
                        case MqttPropertyId.PayloadFormatIndicator:
                            if (property.Number > 1)
                            {
                                throw MqttProtocolException.Protocol("Payload Format Indicator not 0 or 1.");
                            }

                            break;
                        case MqttPropertyId.ContentType:
                        case MqttPropertyId.ResponseTopic:
                        case MqttPropertyId.CorrelationData:
                        case MqttPropertyId.UserProperty:
                            break;
                        default:
                            throw MqttProtocolException.Protocol($"Property 0x{property.Id:X2} is not allowed in will properties.");
                    }
                }

                willPublishProperties = new byte[willProperties.Length];
                var length = MqttPacketDecoder.StripDeliveryProperties(willProperties, willDelayBytes, willExpiryBytes, willPublishProperties);
                willPublishProperties = willPublishProperties[..length];
            }

            var willTopic = reader.ReadUtf8String();
            if (willTopic.IsEmpty || willTopic.IndexOfAny((byte)'+', (byte)'#') >= 0)
            {
                throw MqttProtocolException.Protocol("Will topic is not a valid topic name.");
            }

            var willPayload = reader.ReadBinary();
            will = new MqttApplicationMessage(willTopic.ToArray(), willPayload.ToArray(), willQos, willRetain, willPublishProperties);
        }

        string? username = null;
        if (usernameFlag)
        {
            username = Encoding.UTF8.GetString(reader.ReadUtf8String());
        }

        byte[]? password = null;
        if (passwordFlag)
        {
            password = reader.ReadBinary().ToArray();
        }

        if (!reader.End)
        {
            throw MqttProtocolException.Malformed("Trailing bytes after CONNECT payload.");
        }

        return new MqttConnectPacket
        {
            ProtocolVersion = version,
            CleanStart = cleanStart,
            KeepAliveSeconds = keepAlive,
            ClientId = clientId,
            Username = username,
            Password = password,
            Will = will,
            WillDelaySeconds = willDelay,
            WillMessageExpirySeconds = willExpiry,
            TopicAliasMaximum = topicAliasMaximum,
            AuthenticationData = authenticationData,
            SessionExpirySeconds = sessionExpiry,
            ReceiveMaximum = receiveMaximum,
            MaximumPacketSize = maxPacketSize,
            RequestProblemInformation = requestProblemInformation,
            AuthenticationMethod = authenticationMethod,
        };
    }
}
