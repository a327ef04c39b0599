using System.Diagnostics.Metrics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// The broker's instruments (meter "Fieldline.Mqtt"). Per-message counts are plain interlocked fields read by
/// observable instruments, so the hot path pays one atomic add and nothing else. Names of the seed's metrics
/// (iot_mqtt_messages_received, iot_mqtt_messages_published) are kept as they are.
/// </summary>
internal sealed class MqttBrokerMetrics : IDisposable
{
    public const string MeterName = "Fieldline.Mqtt";

    private readonly Meter _meter;
    private readonly Counter<long> _protocolErrors;
    private readonly Counter<long> _connectRefused;
    private readonly Counter<long> _authorizationDenied;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _backpressureWaits;
    private readonly Counter<long> _sharedReassigned;
    private readonly Counter<long> _limitsReached;
    private long _messagesReceived;
    private long _messagesSent;
    private long _bytesReceived;
    private long _bytesSent;

    public MqttBrokerMetrics(MqttBroker broker, IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableCounter("iot_mqtt_messages_received", () => Volatile.Read(ref _messagesReceived), description: "MQTT PUBLISH packets received from clients");
        _meter.CreateObservableCounter("iot_mqtt_messages_published", () => Volatile.Read(ref _messagesSent), description: "MQTT PUBLISH packets sent to subscribers");
        _meter.CreateObservableCounter("fieldline.mqtt.bytes_received", () => Volatile.Read(ref _bytesReceived), unit: "By", description: "Bytes of MQTT packets received");
        _meter.CreateObservableCounter("fieldline.mqtt.bytes_sent", () => Volatile.Read(ref _bytesSent), unit: "By", description: "Bytes of MQTT packets sent");
        _meter.CreateObservableGauge("fieldline.mqtt.clients_connected", () => broker.ConnectedClients, description: "Connected MQTT clients");
        _meter.CreateObservableGauge("fieldline.mqtt.sessions", () => broker.SessionCount, description: "MQTT sessions, connected or persistent");
        _meter.CreateObservableGauge("fieldline.mqtt.subscriptions", () => broker.SubscriptionCount, description: "MQTT subscriptions");
        _meter.CreateObservableGauge("fieldline.mqtt.retained_messages", () => broker.RetainedCount, description: "Retained MQTT messages");
        _protocolErrors = _meter.CreateCounter<long>("fieldline.mqtt.protocol_errors", description: "Connections closed for a malformed or out-of-order packet");
        _connectRefused = _meter.CreateCounter<long>("fieldline.mqtt.connect_refused", description: "CONNECT packets refused");
        _authorizationDenied = _meter.CreateCounter<long>("fieldline.mqtt.authorization_denied", description: "PUBLISH and SUBSCRIBE refused by the authorization policy");
        _dropped = _meter.CreateCounter<long>("fieldline.mqtt.messages_dropped", description: "Messages not delivered to a subscriber");
        _backpressureWaits = _meter.CreateCounter<long>("fieldline.mqtt.backpressure_waits", description: "Times a publisher was paused for a slow subscriber");
        _sharedReassigned = _meter.CreateCounter<long>("fieldline.mqtt.shared_reassigned", description: "Messages of a shared subscription handed to another member after theirs left");
        _limitsReached = _meter.CreateCounter<long>("fieldline.mqtt.limits_reached", description: "Requests refused because a configured limit was reached");
    }

    public long MessagesReceived => Volatile.Read(ref _messagesReceived);

    public long MessagesSent => Volatile.Read(ref _messagesSent);

    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    public long BytesSent => Volatile.Read(ref _bytesSent);

    public void MessageReceived(int bytes)
    {
        Interlocked.Increment(ref _messagesReceived);
        Interlocked.Add(ref _bytesReceived, bytes);
    }

    public void PacketReceived(int bytes) => Interlocked.Add(ref _bytesReceived, bytes);

    public void MessageSent(int bytes)
    {
        Interlocked.Increment(ref _messagesSent);
        Interlocked.Add(ref _bytesSent, bytes);
    }

    public void PacketSent(int bytes) => Interlocked.Add(ref _bytesSent, bytes);

    public void ProtocolError(MqttReasonCode reason) => _protocolErrors.Add(1, new KeyValuePair<string, object?>("reason", ReasonName(reason)));

    public void ConnectRefused(MqttReasonCode reason) => _connectRefused.Add(1, new KeyValuePair<string, object?>("reason", ReasonName(reason)));

    public void AuthorizationDenied(string action) => _authorizationDenied.Add(1, new KeyValuePair<string, object?>("action", action));

    public void Dropped(string reason) => _dropped.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void BackpressureWait() => _backpressureWaits.Add(1);

    public void SharedReassigned() => _sharedReassigned.Add(1);

    public void LimitReached(string limit) => _limitsReached.Add(1, new KeyValuePair<string, object?>("limit", limit));

    /// <summary>The meter of this broker's instruments (tests listen to it).</summary>
    internal Meter Meter => _meter;

    public void Dispose() => _meter.Dispose();

    private static string ReasonName(MqttReasonCode reason) => reason switch
    {
        MqttReasonCode.MalformedPacket => "malformed_packet",
        MqttReasonCode.ProtocolError => "protocol_error",
        MqttReasonCode.PacketTooLarge => "packet_too_large",
        MqttReasonCode.TopicNameInvalid => "topic_name_invalid",
        MqttReasonCode.TopicAliasInvalid => "topic_alias_invalid",
        MqttReasonCode.ReceiveMaximumExceeded => "receive_maximum_exceeded",
        MqttReasonCode.BadUserNameOrPassword => "bad_username_or_password",
        MqttReasonCode.NotAuthorized => "not_authorized",
        MqttReasonCode.UnsupportedProtocolVersion => "unsupported_protocol_version",
        MqttReasonCode.ClientIdentifierNotValid => "client_identifier_not_valid",
        MqttReasonCode.BadAuthenticationMethod => "bad_authentication_method",
        MqttReasonCode.ConnectionRateExceeded => "connection_rate_exceeded",
        MqttReasonCode.ServerUnavailable => "server_unavailable",
        MqttReasonCode.ServerBusy => "server_busy",
        MqttReasonCode.QuotaExceeded => "quota_exceeded",
        _ => "other",
    };
}
