using System.Text;

namespace Fieldline.Mqtt;

/// <summary>
/// A message the broker holds beyond the packet it arrived in: a retained message, a last will, or a QoS 1
/// message queued for a subscriber. Immutable, so one instance is shared by every session it is queued for.
/// </summary>
public sealed class MqttApplicationMessage
{
    private string? _topic;

    /// <summary>Creates a message.</summary>
    /// <param name="topicUtf8">The topic name in UTF-8.</param>
    /// <param name="payload">The payload (the message keeps the reference; do not reuse the buffer).</param>
    /// <param name="qualityOfService">0, 1 or 2.</param>
    /// <param name="retain">The RETAIN flag.</param>
    /// <param name="properties">The MQTT 5.0 PUBLISH properties block to forward, without topic alias and subscription identifiers.</param>
    public MqttApplicationMessage(byte[] topicUtf8, ReadOnlyMemory<byte> payload, byte qualityOfService, bool retain, ReadOnlyMemory<byte> properties = default)
    {
        ArgumentNullException.ThrowIfNull(topicUtf8);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(qualityOfService, (byte)2);
        TopicUtf8 = topicUtf8;
        Payload = payload;
        QualityOfService = qualityOfService;
        Retain = retain;
        Properties = properties;
    }

    /// <summary>Creates a message from a topic string.</summary>
    public MqttApplicationMessage(string topic, ReadOnlyMemory<byte> payload, byte qualityOfService = 0, bool retain = false)
        : this(Encoding.UTF8.GetBytes(topic), payload, qualityOfService, retain)
    {
        _topic = topic;
    }

    /// <summary>The topic name in UTF-8.</summary>
    public byte[] TopicUtf8 { get; }

    /// <summary>The topic name.</summary>
    public string Topic => _topic ??= Encoding.UTF8.GetString(TopicUtf8);

    /// <summary>The payload.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The QoS the message was published with.</summary>
    public byte QualityOfService { get; }

    /// <summary>The RETAIN flag it was published with.</summary>
    public bool Retain { get; }

    /// <summary>
    /// The MQTT 5.0 properties block forwarded to 5.0 subscribers, without Topic Alias, Subscription Identifier
    /// and Message Expiry Interval, which the broker writes per delivery.
    /// </summary>
    public ReadOnlyMemory<byte> Properties { get; }

    /// <summary>When the message expires (5.0 Message Expiry Interval counted from its arrival); null for never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>
    /// For a message the server publishes (<see cref="Server.MqttBroker.Publish"/>): called with the client id each
    /// time a subscriber completes its delivery (PUBACK at QoS 1, PUBCOMP at QoS 2). Called outside the session's
    /// lock, on the connection's thread: it must not block. Not kept in the state store: after a restart a restored
    /// delivery completes without it.
    /// </summary>
    public Action<string>? Acknowledged { get; init; }

    /// <summary>A 5.0 properties block holding one Correlation Data property, for a reply to a request.</summary>
    public static byte[] CorrelationDataProperties(ReadOnlySpan<byte> correlationData)
    {
        if (correlationData.Length > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(correlationData), correlationData.Length, "Correlation Data is at most 65,535 bytes.");
        }

        var block = new byte[3 + correlationData.Length];
        block[0] = Protocol.MqttPropertyId.CorrelationData;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(block.AsSpan(1), (ushort)correlationData.Length);
        correlationData.CopyTo(block.AsSpan(3));
        return block;
    }

    /// <summary>Identity of the message in the broker's state store, assigned when it is first stored; 0 before.</summary>
    internal long StoreId;

    /// <summary>
    /// A copy of an inbound publish that outlives the packet's buffer. Its properties must already be stripped of
    /// Topic Alias and Message Expiry Interval (the broker does so); <paramref name="expiresAt"/> carries the expiry.
    /// </summary>
    internal static MqttApplicationMessage CopyOf(in MqttInboundPublish publish, DateTimeOffset? expiresAt) =>
        new(publish.TopicUtf8.ToArray(), publish.Payload.ToArray(), publish.QualityOfService, publish.Retain, publish.Properties.ToArray()) { ExpiresAt = expiresAt };
}

/// <summary>
/// An inbound PUBLISH as the broker's policy sees it. Its memory points into the connection's receive buffer:
/// valid only during the call it is passed to; copy what must outlive it.
/// </summary>
public readonly struct MqttInboundPublish
{
    internal MqttInboundPublish(ReadOnlyMemory<byte> topic, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> properties, byte qos, bool retain, bool dup, ushort packetId)
    {
        TopicUtf8 = topic;
        Payload = payload;
        Properties = properties;
        QualityOfService = qos;
        Retain = retain;
        Duplicate = dup;
        PacketId = packetId;
    }

    /// <summary>The topic name in UTF-8.</summary>
    public ReadOnlyMemory<byte> TopicUtf8 { get; }

    /// <summary>The payload.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The MQTT 5.0 properties block (empty for 3.1.1).</summary>
    public ReadOnlyMemory<byte> Properties { get; }

    /// <summary>0, 1 or 2.</summary>
    public byte QualityOfService { get; }

    /// <summary>The RETAIN flag.</summary>
    public bool Retain { get; }

    /// <summary>The DUP flag.</summary>
    public bool Duplicate { get; }

    /// <summary>The packet identifier (0 for QoS 0).</summary>
    public ushort PacketId { get; }

    /// <summary>The topic as a string (allocates).</summary>
    public string GetTopic() => Encoding.UTF8.GetString(TopicUtf8.Span);

    /// <summary>The 5.0 Topic Alias the packet carried (0 for none); the broker resolves it before the policy sees the message.</summary>
    public ushort TopicAlias { get; internal init; }

    /// <summary>The 5.0 Message Expiry Interval in seconds, if the publisher set one.</summary>
    public uint? MessageExpirySeconds { get; internal init; }

    /// <summary>Whether the publisher declared the payload UTF-8 text (5.0 Payload Format Indicator 1).</summary>
    public bool IsUtf8Payload { get; internal init; }

    /// <summary>
    /// The 5.0 request/response properties of the message: its Response Topic and Correlation Data (each empty when
    /// absent). False when it has no Response Topic.
    /// </summary>
    public bool TryGetResponseTopic(out ReadOnlySpan<byte> responseTopic, out ReadOnlySpan<byte> correlationData)
    {
        responseTopic = default;
        correlationData = default;
        var reader = new Protocol.MqttPropertyReader(Properties.Span);
        while (reader.TryRead(out var property))
        {
            if (property.Id == Protocol.MqttPropertyId.ResponseTopic)
            {
                responseTopic = property.Bytes;
            }
            else if (property.Id == Protocol.MqttPropertyId.CorrelationData)
            {
                correlationData = property.Bytes;
            }
        }

        return !responseTopic.IsEmpty;
    }

    internal Range AliasPropertyRange { get; init; }

    internal Range ExpiryPropertyRange { get; init; }
}
