namespace Fieldline.Mqtt.Persistence;

/// <summary>
/// The durable home of the broker state that must outlive the process: persistent sessions (their subscriptions,
/// the QoS 1/2 messages queued or in flight towards them, the QoS 2 packet ids received from them and not yet
/// released) and retained messages.
/// </summary>
/// <remarks>
/// Design note. The broker's memory is authoritative while it runs; the store is a write-behind log of changes
/// that the broker reads back once, at start. Appending a change never blocks on I/O: changes are queued and
/// written in order by one writer in group commits. Whoever must not acknowledge before a change is durable
/// (a PUBACK to a publisher whose message was queued for a persistent session, a SUBACK, a PUBREC) takes
/// <see cref="WhenDurable"/> after appending and waits on it; everyone else does not wait. So there is no
/// periodic snapshot and no loss window for anything acknowledged. Appends from many threads are allowed;
/// each caller's own appends keep their order.
/// </remarks>
public interface IMqttStateStore : IAsyncDisposable
{
    /// <summary>Reads everything stored. Called once, before the broker accepts connections.</summary>
    Task<MqttStoredState> LoadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Completes when every change appended before the call is durable; faults when writing them failed.
    /// Calls between two commits return the same task, so waiting costs no allocation per message.
    /// </summary>
    Task WhenDurable();

    /// <summary>Creates or updates a session's record (not its subscriptions or messages).</summary>
    void PutSession(MqttStoredSession session);

    /// <summary>Removes a session with its subscriptions, deliveries and QoS 2 packet ids.</summary>
    void RemoveSession(string clientId);

    /// <summary>Creates or replaces a subscription of a session (keyed by client id and filter, including any '$share/{group}/' prefix).</summary>
    void PutSubscription(string clientId, MqttStoredSubscription subscription);

    /// <summary>Removes a subscription of a session.</summary>
    void RemoveSubscription(string clientId, string filter);

    /// <summary>
    /// Adds a message to be delivered to a session. <see cref="MqttStoredDelivery.MessageId"/> identifies the
    /// message's content: the first delivery of a message id stores the content, later ones (the same message
    /// routed to other sessions) only refer to it. The content is deleted with its last delivery.
    /// </summary>
    void PutDelivery(string clientId, MqttStoredDelivery delivery);

    /// <summary>Records that a delivery was sent with a packet id, or that its PUBREC arrived (state <see cref="MqttDeliveryState.Released"/>).</summary>
    void UpdateDelivery(string clientId, long sequence, ushort packetId, MqttDeliveryState state);

    /// <summary>Removes a delivery: acknowledged (PUBACK, PUBCOMP), expired, dropped or moved to another session.</summary>
    void RemoveDelivery(string clientId, long sequence);

    /// <summary>Records a QoS 2 packet id received from a session's client and not yet released by PUBREL.</summary>
    void PutIncomingQos2(string clientId, ushort packetId);

    /// <summary>Forgets a QoS 2 packet id once PUBREL released it.</summary>
    void RemoveIncomingQos2(string clientId, ushort packetId);

    /// <summary>Stores the retained message of its topic, replacing any earlier one.</summary>
    void PutRetained(MqttApplicationMessage message);

    /// <summary>Removes the retained message of a topic.</summary>
    void RemoveRetained(string topic);
}

/// <summary>Everything a store holds, as read at start.</summary>
/// <param name="Sessions">The persistent sessions.</param>
/// <param name="Retained">The retained messages.</param>
public sealed record MqttStoredState(IReadOnlyList<MqttStoredSessionState> Sessions, IReadOnlyList<MqttApplicationMessage> Retained)
{
    /// <summary>A store with nothing in it.</summary>
    public static MqttStoredState Empty { get; } = new([], []);
}

/// <summary>A session's record.</summary>
/// <param name="ClientId">The client identifier.</param>
/// <param name="Owner">The user name that created the session (null for none).</param>
/// <param name="ExpirySeconds">Session expiry interval; <see cref="uint.MaxValue"/> means never.</param>
/// <param name="DisconnectedAt">When its client disconnected; null while connected (a crash leaves it null: the restart counts as the disconnection).</param>
public sealed record MqttStoredSession(string ClientId, string? Owner, uint ExpirySeconds, DateTimeOffset? DisconnectedAt);

/// <summary>A session with what belongs to it, as read at start.</summary>
/// <param name="Session">The session's record.</param>
/// <param name="Subscriptions">Its subscriptions.</param>
/// <param name="Deliveries">Its deliveries, in sequence order.</param>
/// <param name="IncomingQos2">QoS 2 packet ids received and not released.</param>
public sealed record MqttStoredSessionState(
    MqttStoredSession Session,
    IReadOnlyList<MqttStoredSubscription> Subscriptions,
    IReadOnlyList<MqttStoredDelivery> Deliveries,
    IReadOnlyList<ushort> IncomingQos2);

/// <summary>A subscription as SUBSCRIBE asked for it (with the QoS granted).</summary>
/// <param name="Filter">The topic filter, with its '$share/{group}/' prefix when shared.</param>
/// <param name="MaximumQoS">The QoS granted.</param>
/// <param name="NoLocal">5.0 No Local.</param>
/// <param name="RetainAsPublished">5.0 Retain As Published.</param>
/// <param name="RetainHandling">5.0 Retain Handling (0, 1, 2).</param>
/// <param name="SubscriptionIdentifier">5.0 Subscription Identifier; 0 when none.</param>
public sealed record MqttStoredSubscription(string Filter, byte MaximumQoS, bool NoLocal, bool RetainAsPublished, byte RetainHandling, uint SubscriptionIdentifier);

/// <summary>Where a QoS 1/2 delivery to a session stands.</summary>
public enum MqttDeliveryState : byte
{
    /// <summary>Waiting to be sent (the client is offline or its window is full).</summary>
    Queued = 0,

    /// <summary>Sent with a packet id; waiting for PUBACK (QoS 1) or PUBREC (QoS 2). Resent with DUP on resume.</summary>
    Sent = 1,

    /// <summary>QoS 2: PUBREC received, PUBREL sent; waiting for PUBCOMP. PUBREL is resent on resume.</summary>
    Released = 2,
}

/// <summary>A message to be delivered to one session.</summary>
/// <param name="Sequence">Order of the delivery within its session (increasing).</param>
/// <param name="MessageId">Identity of the message content, shared by the deliveries of one routed message.</param>
/// <param name="Message">The message (its topic, payload, properties, QoS as published, expiry).</param>
/// <param name="QualityOfService">The QoS of this delivery (1 or 2: the lower of the published and the granted).</param>
/// <param name="Retain">The RETAIN flag this delivery is sent with.</param>
/// <param name="PacketId">The packet id once sent; 0 while queued.</param>
/// <param name="State">Where the delivery stands.</param>
/// <param name="SubscriptionIdentifiers">5.0 subscription identifiers sent with it (empty for none).</param>
public sealed record MqttStoredDelivery(
    long Sequence,
    long MessageId,
    MqttApplicationMessage Message,
    byte QualityOfService,
    bool Retain,
    ushort PacketId,
    MqttDeliveryState State,
    IReadOnlyList<uint> SubscriptionIdentifiers);
