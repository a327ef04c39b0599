namespace Fieldline.Mqtt.Protocol;

/// <summary>
/// A packet broke the protocol. Decoders throw it (never anything else) so that the connection can close
/// with <see cref="ReasonCode"/>; it is exceptional by design, as a well-behaved client never causes it.
/// </summary>
public sealed class MqttProtocolException : Exception
{
    public MqttProtocolException(MqttReasonCode reasonCode, string message)
        : base(message) => ReasonCode = reasonCode;

    public MqttProtocolException()
        : this(MqttReasonCode.MalformedPacket, "Malformed packet.")
    {
    }

    public MqttProtocolException(string message)
        : this(MqttReasonCode.MalformedPacket, message)
    {
    }

    public MqttProtocolException(string message, Exception innerException)
        : base(message, innerException) => ReasonCode = MqttReasonCode.MalformedPacket;

    /// <summary>The reason code the connection is closed with.</summary>
    public MqttReasonCode ReasonCode { get; }

    internal static MqttProtocolException Malformed(string message) => new(MqttReasonCode.MalformedPacket, message);

    internal static MqttProtocolException Protocol(string message) => new(MqttReasonCode.ProtocolError, message);
}
