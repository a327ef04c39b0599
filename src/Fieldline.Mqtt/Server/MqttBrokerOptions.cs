namespace Fieldline.Mqtt.Server;

/// <summary>Limits and timings of the broker.</summary>
public sealed class MqttBrokerOptions
{
    /// <summary>The largest packet accepted from or sent to a client, in bytes.</summary>
    public int MaximumPacketSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// How many QoS 1/2 messages a client may have unacknowledged towards the broker (5.0 Receive Maximum), and
    /// how many messages of any QoS may wait for the policy's completion (the store) before the broker stops
    /// reading from that client.
    /// </summary>
    public ushort ReceiveMaximum { get; set; } = 1024;

    /// <summary>How many QoS 1 messages the broker sends to a client before it waits for PUBACKs.</summary>
    public ushort MaximumInflightPerClient { get; set; } = 256;

    /// <summary>
    /// How many messages wait for an offline or busy session. When it is reached the oldest QoS 0 message is
    /// dropped; when there is none, a new QoS 1/2 message is refused for that session (a 5.0 publisher hears
    /// 0x97 Quota exceeded) and messages already accepted are kept.
    /// </summary>
    public int MaximumQueuedMessagesPerSession { get; set; } = 10_000;

    /// <summary>The same limit in bytes of topic, payload and properties.</summary>
    public long MaximumQueuedBytesPerSession { get; set; } = 64L * 1024 * 1024;

    /// <summary>How many topics may hold a retained message; a new one beyond it is not retained (5.0: 0x97).</summary>
    public int MaximumRetainedMessages { get; set; } = 100_000;

    /// <summary>How many topic aliases a 5.0 client may set towards the broker (CONNACK Topic Alias Maximum).</summary>
    public ushort TopicAliasMaximum { get; set; } = 64;

    /// <summary>How many topic aliases the broker uses at most towards a 5.0 client that accepts them.</summary>
    public ushort OutboundTopicAliasMaximum { get; set; } = 64;

    /// <summary>
    /// When this many QoS 1 messages wait for a connected client's window, publishers to it are held back until
    /// half of them are delivered: a slow QoS 1 subscriber slows its publishers instead of losing messages.
    /// </summary>
    public int QueueHighWaterMark { get; set; } = 1_000;

    /// <summary>How long a client may take to send CONNECT.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a publisher waits for a subscriber that does not read before that subscriber is disconnected.</summary>
    public TimeSpan SlowConsumerTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Upper bound on the keep-alive a client may ask for; 0 means any.</summary>
    public ushort MaximumKeepAliveSeconds { get; set; }

    /// <summary>
    /// How often the broker publishes its figures as retained messages under <c>$SYS/broker/</c> (mosquitto's
    /// topics: version, uptime, clients, messages, bytes, subscriptions, retained messages); zero turns them off.
    /// </summary>
    public TimeSpan SysTopicInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Most client connections at once; 0 for no limit. When the broker is full a new connection is closed before
    /// its CONNECT is read; one that was accepted just before the broker filled up is refused with CONNACK 0x89
    /// Server busy (3.1.1: 0x03 Server unavailable).
    /// </summary>
    public int MaximumConnections { get; set; } = 100_000;

    /// <summary>Most client connections at once from one IP address; 0 for no limit. Beyond: CONNACK 0x97 Quota exceeded (3.1.1: 0x03).</summary>
    public int MaximumConnectionsPerAddress { get; set; } = 1_000;

    /// <summary>
    /// CONNECT packets admitted per second on average, over all clients (a token bucket of
    /// <see cref="ConnectRateBurst"/> tokens); 0 for no limit. Beyond: CONNACK 0x9F Connection rate exceeded (3.1.1: 0x03).
    /// Checked before authentication, so that a flood of logins cannot use up the CPU.
    /// </summary>
    public double MaximumConnectRate { get; set; } = 1_000;

    /// <summary>How many CONNECT packets may arrive at once above <see cref="MaximumConnectRate"/> (the size of the bucket).</summary>
    public int ConnectRateBurst { get; set; } = 1_000;

    /// <summary>Most subscriptions a client (session) may hold; 0 for no limit. Filters beyond get SUBACK 0x97 Quota exceeded (3.1.1: 0x80).</summary>
    public int MaximumSubscriptionsPerClient { get; set; } = 1_000;

    /// <summary>
    /// Longest topic name or topic filter, in UTF-8 bytes; 0 for MQTT's own limit (65,535). A longer topic name is
    /// refused (5.0: PUBACK/PUBREC 0x90 Topic Name invalid for QoS 1/2, DISCONNECT 0x90 for QoS 0; 3.1.1: the
    /// connection is closed), a longer filter gets SUBACK 0x8F Topic Filter invalid (3.1.1: 0x80).
    /// </summary>
    public int MaximumTopicLength { get; set; } = 4_096;

    /// <summary>Most levels ('/'-separated parts) of a topic name or filter; 0 for no limit. Refused like <see cref="MaximumTopicLength"/>.</summary>
    public int MaximumTopicLevels { get; set; } = 128;
}
