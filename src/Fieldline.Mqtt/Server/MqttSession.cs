using Fieldline.Mqtt.Persistence;
using Fieldline.Mqtt.Protocol;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// The state MQTT keeps for a client id across connections: subscriptions, QoS 1/2 messages in flight towards it,
/// messages queued while it is offline or its window is full, and QoS 2 packet ids received but not released.
/// </summary>
/// <remarks>
/// Design note. Everything here changes under the session's lock, and every change that a persistent session
/// must not lose is appended to the broker's state store in the same critical section, so the store sees the
/// changes of one session in the order they happened. Appending never waits; whoever acknowledges something
/// because of such a change (the publisher's PUBACK, a SUBACK) waits for the store's durable point first.
/// </remarks>
internal sealed class MqttSession
{
    private readonly MqttBroker _broker;
    private readonly Lock _sync = new();
    private readonly Dictionary<ushort, Delivery> _inflight = [];
    private readonly DeliveryQueue _queue = new();
    private readonly HashSet<ushort> _incomingQos2 = [];
    private readonly Dictionary<string, TopicSubscription<MqttSession>> _subscriptions = new(StringComparer.Ordinal);
    private TaskCompletionSource? _uncongested;
    private int _congestionLowWater = int.MaxValue;
    private ushort _nextPacketId;
    private long _sequence;
    private uint _expirySeconds;

    public MqttSession(MqttBroker broker, string clientId, string? owner)
    {
        _broker = broker;
        ClientId = clientId;
        Owner = owner;
    }

    public string ClientId { get; }

    /// <summary>The user name that created the session; only the same user name may resume or take it over.</summary>
    public string? Owner { get; }

    /// <summary>The connection currently attached, or null while the client is offline.</summary>
    public MqttConnection? Connection { get; private set; }

    /// <summary>Seconds the session outlives its connection; <see cref="uint.MaxValue"/> means forever.</summary>
    public uint ExpirySeconds
    {
        get => _expirySeconds;
        set
        {
            lock (_sync)
            {
                var wasStored = IsStored;
                _expirySeconds = value;
                if (IsStored)
                {
                    _broker.Store!.PutSession(new MqttStoredSession(ClientId, Owner, value, Connection is null ? DisconnectedAt : null));
                }
                else if (wasStored)
                {
                    _broker.Store!.RemoveSession(ClientId);
                }
            }
        }
    }

    /// <summary>When the client went offline (wall clock, so that expiry counts across restarts).</summary>
    public DateTimeOffset DisconnectedAt { get; private set; }

    public bool IsPersistent => _expirySeconds > 0;

    /// <summary>Whether the broker's state store keeps this session.</summary>
    private bool IsStored => _expirySeconds > 0 && _broker.Store is not null;

    /// <summary>Whether a QoS 1/2 message sent now would go out at once rather than wait in the queue.</summary>
    public bool HasRoom
    {
        get
        {
            var connection = Connection;
            return connection is not null && _queue.Count == 0 && _inflight.Count < Window(connection);
        }
    }

    public int SubscriptionCount
    {
        get
        {
            lock (_sync)
            {
                return _subscriptions.Count;
            }
        }
    }

    public int QueuedCount
    {
        get
        {
            lock (_sync)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Rebuilds a session read from the state store (the broker adds its subscriptions to the trees).</summary>
    public void Restore(MqttStoredSessionState stored, DateTimeOffset now)
    {
        lock (_sync)
        {
            _expirySeconds = stored.Session.ExpirySeconds;

            // A session the crash left marked connected went offline when the process ended; counting from the
            // restart errs on the side of keeping it.
            DisconnectedAt = stored.Session.DisconnectedAt ?? now;
            foreach (var subscription in stored.Subscriptions)
            {
                _subscriptions[subscription.Filter] = new TopicSubscription<MqttSession>(
                    this, subscription.Filter, subscription.MaximumQoS, subscription.NoLocal, subscription.RetainAsPublished, subscription.RetainHandling, subscription.SubscriptionIdentifier);
            }

            foreach (var stored1 in stored.Deliveries)
            {
                stored1.Message.StoreId = stored1.MessageId;
                var delivery = new Delivery
                {
                    Sequence = stored1.Sequence,
                    Message = stored1.Message,
                    Qos = stored1.QualityOfService,
                    Retain = stored1.Retain,
                    PacketId = stored1.PacketId,
                    State = stored1.State,
                    SubscriptionIds = SubscriptionIdentifiers.From(stored1.SubscriptionIdentifiers),
                    Stored = true,
                };
                _sequence = Math.Max(_sequence, delivery.Sequence);
                if (delivery.State == MqttDeliveryState.Queued || delivery.PacketId == 0 || _inflight.ContainsKey(delivery.PacketId))
                {
                    delivery.State = MqttDeliveryState.Queued;
                    _queue.Enqueue(delivery);
                }
                else
                {
                    _inflight[delivery.PacketId] = delivery;
                }
            }

            foreach (var packetId in stored.IncomingQos2)
            {
                _incomingQos2.Add(packetId);
            }
        }
    }

    public IReadOnlyList<TopicSubscription<MqttSession>> GetSubscriptions()
    {
        lock (_sync)
        {
            return [.. _subscriptions.Values];
        }
    }

    /// <summary>
    /// Attaches a connection with its Session Expiry Interval: <paramref name="beforeVisible"/> (CONNACK) is written
    /// first, then the connection becomes the session's, then unacknowledged messages are resent in their original order (PUBLISH with DUP,
    /// or PUBREL for a QoS 2 message already received, MQTT-4.4.0-1) and queued ones follow. All under the
    /// session's lock, so no delivery interleaves.
    /// </summary>
    public void AttachAndResume(MqttConnection connection, uint expirySeconds, Action beforeVisible)
    {
        lock (_sync)
        {
            beforeVisible();
            Connection = connection;

            // The new connection's Session Expiry applies from now on: one record for the store, written here.
            var wasStored = IsStored;
            _expirySeconds = expirySeconds;
            if (IsStored)
            {
                _broker.Store!.PutSession(new MqttStoredSession(ClientId, Owner, _expirySeconds, null));
                if (!wasStored)
                {
                    // A clean session taken over by a persistent one: what it subscribed to must outlive it too.
                    foreach (var subscription in _subscriptions.Values)
                    {
                        StoreSubscriptionLocked(subscription);
                    }
                }
            }
            else if (wasStored)
            {
                _broker.Store!.RemoveSession(ClientId);
            }

            foreach (var (packetId, delivery) in _inflight.OrderBy(pair => pair.Value.Sequence))
            {
                if (delivery.State == MqttDeliveryState.Released)
                {
                    connection.SendPubRel(packetId);
                }
                else
                {
                    Send(connection, delivery, dup: true);
                }
            }

            DrainQueueLocked();
        }
    }

    /// <summary>
    /// Detaches <paramref name="connection"/> if it is still the one attached; false when another took over.
    /// Deliveries that came through a shared subscription and were not received yet are taken out of the session
    /// into <paramref name="reassign"/>, for the broker to hand to another member of their group.
    /// </summary>
    public bool Detach(MqttConnection connection, DateTimeOffset now, List<Delivery> reassign)
    {
        lock (_sync)
        {
            if (Connection != connection)
            {
                return false;
            }

            Connection = null;
            DisconnectedAt = now;
            if (IsStored)
            {
                _broker.Store!.PutSession(new MqttStoredSession(ClientId, Owner, _expirySeconds, now));
            }

            foreach (var (packetId, delivery) in _inflight)
            {
                if (delivery.Group is not null && delivery.State == MqttDeliveryState.Sent)
                {
                    reassign.Add(delivery);
                }
            }

            foreach (var delivery in reassign)
            {
                _inflight.Remove(delivery.PacketId);
            }

            reassign.AddRange(_queue.RemoveAll(d => d.Group is not null));
            foreach (var delivery in reassign)
            {
                if (delivery.Stored)
                {
                    _broker.Store!.RemoveDelivery(ClientId, delivery.Sequence);
                }
            }

            ReleaseCongestionLocked();
            return true;
        }
    }

    public void SetSubscription(TopicSubscription<MqttSession> subscription)
    {
        lock (_sync)
        {
            _subscriptions[subscription.Filter] = subscription;
            if (IsStored)
            {
                StoreSubscriptionLocked(subscription);
            }
        }
    }

    private void StoreSubscriptionLocked(TopicSubscription<MqttSession> subscription) =>
        _broker.Store!.PutSubscription(ClientId, new MqttStoredSubscription(
            subscription.Filter, subscription.MaximumQoS, subscription.NoLocal, subscription.RetainAsPublished, subscription.RetainHandling, subscription.SubscriptionIdentifier));

    public bool RemoveSubscription(string filter)
    {
        lock (_sync)
        {
            if (!_subscriptions.Remove(filter))
            {
                return false;
            }

            if (IsStored)
            {
                _broker.Store!.RemoveSubscription(ClientId, filter);
            }

            return true;
        }
    }

    public List<string> GetSubscriptionFilters()
    {
        lock (_sync)
        {
            return [.. _subscriptions.Keys];
        }
    }

    public bool HasSubscription(string filter)
    {
        lock (_sync)
        {
            return _subscriptions.ContainsKey(filter);
        }
    }

    /// <summary>Records an incoming QoS 2 packet id; false when it is already recorded (a retransmission).</summary>
    public bool TryBeginIncomingQos2(ushort packetId)
    {
        lock (_sync)
        {
            if (!_incomingQos2.Add(packetId))
            {
                return false;
            }

            if (IsStored)
            {
                _broker.Store!.PutIncomingQos2(ClientId, packetId);
            }

            return true;
        }
    }

    /// <summary>QoS 2 messages received and not yet released by PUBREL.</summary>
    public int IncomingQos2Count
    {
        get
        {
            lock (_sync)
            {
                return _incomingQos2.Count;
            }
        }
    }

    public bool IsIncomingQos2(ushort packetId)
    {
        lock (_sync)
        {
            return _incomingQos2.Contains(packetId);
        }
    }

    public bool ReleaseIncomingQos2(ushort packetId)
    {
        lock (_sync)
        {
            if (!_incomingQos2.Remove(packetId))
            {
                return false;
            }

            if (IsStored)
            {
                _broker.Store!.RemoveIncomingQos2(ClientId, packetId);
            }

            return true;
        }
    }

    /// <summary>
    /// Delivers a message: sent at once when the client is connected and its window has room, otherwise queued
    /// (QoS 0 only for an offline persistent session; a connected client gets QoS 0 straight from the router).
    /// </summary>
    /// <remarks>
    /// <paramref name="congested"/> is the client's connection when, connected, it has the high-water mark or more
    /// messages queued: the publisher should then wait on <see cref="WhenUncongested"/>.
    /// </remarks>
    public DeliveryOutcome Enqueue(MqttApplicationMessage message, byte qos, bool retain, SubscriptionIdentifiers subscriptionIds, SharedSubscriptionGroup? group, int highWater, out MqttConnection? sentTo, out MqttConnection? congested)
    {
        sentTo = null;
        congested = null;
        var options = _broker.Options;
        lock (_sync)
        {
            var delivery = new Delivery
            {
                Sequence = ++_sequence,
                Message = message,
                Qos = qos,
                Retain = retain,
                SubscriptionIds = subscriptionIds,
                Group = group,
            };
            var connection = Connection;
            if (connection is not null && _queue.Count == 0 && _inflight.Count < Window(connection))
            {
                var stored = StoreLocked(ref delivery);
                SendNewLocked(connection, ref delivery);
                sentTo = connection;
                return stored ? DeliveryOutcome.SentAndStored : DeliveryOutcome.Sent;
            }

            if (connection is null && qos == 0 && !IsPersistent)
            {
                return DeliveryOutcome.Dropped;
            }

            // Make room: expired messages first, then the oldest QoS 0 ones; accepted QoS 1/2 messages are never
            // dropped for a newer one, which is refused instead (5.0 publishers hear 0x97 Quota exceeded).
            var size = delivery.Size;
            while (_queue.Count > 0 && (_queue.Count + 1 > options.MaximumQueuedMessagesPerSession || _queue.Bytes + size > options.MaximumQueuedBytesPerSession))
            {
                if (!_queue.TryRemoveOldestQos0(out _))
                {
                    break;
                }

                _broker.Metrics.Dropped("queue_full_qos0");
            }

            if (_queue.Count + 1 > options.MaximumQueuedMessagesPerSession || _queue.Bytes + size > options.MaximumQueuedBytesPerSession)
            {
                _broker.Metrics.Dropped(qos == 0 ? "queue_full_qos0" : "queue_full");
                return qos == 0 ? DeliveryOutcome.Dropped : DeliveryOutcome.Refused;
            }

            var wasStored = StoreLocked(ref delivery);
            _queue.Enqueue(delivery);
            if (connection is not null && _queue.Count >= highWater)
            {
                congested = connection;
            }

            return wasStored ? DeliveryOutcome.QueuedAndStored : DeliveryOutcome.Queued;
        }
    }

    /// <summary>Completes when the queue of a connected client is below half the high-water mark (or it went offline).</summary>
    public Task WhenUncongested(int highWater)
    {
        lock (_sync)
        {
            if (Connection is null || _queue.Count < highWater / 2)
            {
                return Task.CompletedTask;
            }

            _congestionLowWater = highWater / 2;
            return (_uncongested ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>Handles PUBACK: frees the packet id and sends what waits in the queue.</summary>
    public bool Acknowledge(ushort packetId) => Complete(packetId, MqttDeliveryState.Sent, qos: 1);

    /// <summary>
    /// Handles PUBREC of a QoS 2 delivery: the client has the message; from now on only PUBREL/PUBCOMP remain
    /// (MQTT-4.3.3). A PUBREC with an error reason ends the delivery. Returns whether the packet id was in flight.
    /// </summary>
    public bool Received(ushort packetId, MqttReasonCode reason)
    {
        lock (_sync)
        {
            ref var delivery = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(_inflight, packetId);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref delivery) || delivery.Qos != 2)
            {
                return false;
            }

            if ((byte)reason >= 0x80)
            {
                RemoveInflightLocked(packetId, delivery);
                DrainQueueLocked();
                return true;
            }

            delivery.State = MqttDeliveryState.Released;
            if (delivery.Stored)
            {
                _broker.Store!.UpdateDelivery(ClientId, delivery.Sequence, packetId, MqttDeliveryState.Released);
            }

            Connection?.SendPubRel(packetId);
            return true;
        }
    }

    /// <summary>Handles PUBCOMP: the QoS 2 delivery is complete.</summary>
    public bool CompleteQos2(ushort packetId) => Complete(packetId, MqttDeliveryState.Released, qos: 2);

    /// <summary>Forgets everything when the session ends (clean start or expiry); the store forgets it too.</summary>
    public void Clear()
    {
        lock (_sync)
        {
            var wasStored = IsStored;
            _inflight.Clear();
            _queue.Clear();
            _incomingQos2.Clear();
            _subscriptions.Clear();
            ReleaseCongestionLocked();
            if (wasStored)
            {
                _broker.Store!.RemoveSession(ClientId);
            }
        }
    }

    private bool Complete(ushort packetId, MqttDeliveryState expectedState, byte qos)
    {
        Action<string>? acknowledged;
        lock (_sync)
        {
            if (!_inflight.TryGetValue(packetId, out var delivery) || delivery.Qos != qos || delivery.State != expectedState)
            {
                return false;
            }

            RemoveInflightLocked(packetId, delivery);
            DrainQueueLocked();
            acknowledged = delivery.Message.Acknowledged;
        }

        acknowledged?.Invoke(ClientId);
        return true;
    }

    private void RemoveInflightLocked(ushort packetId, in Delivery delivery)
    {
        _inflight.Remove(packetId);
        if (delivery.Stored)
        {
            _broker.Store!.RemoveDelivery(ClientId, delivery.Sequence);
        }
    }

    private int Window(MqttConnection connection) => Math.Min(_broker.Options.MaximumInflightPerClient, connection.ClientReceiveMaximum);

    private void DrainQueueLocked()
    {
        var connection = Connection;
        if (connection is null)
        {
            return;
        }

        var window = Window(connection);
        var now = default(DateTimeOffset?);
        while (_inflight.Count < window && _queue.TryDequeue(out var delivery))
        {
            if (delivery.Message.ExpiresAt is { } expiresAt && expiresAt <= (now ??= _broker.TimeProvider.GetUtcNow()))
            {
                // MQTT-3.3.2-5: an expired message is not delivered to a subscriber that has not started receiving it.
                _broker.Metrics.Dropped("expired");
                if (delivery.Stored)
                {
                    _broker.Store!.RemoveDelivery(ClientId, delivery.Sequence);
                }

                continue;
            }

            if (delivery.Qos == 0)
            {
                Send(connection, delivery, dup: false);
                continue;
            }

            SendNewLocked(connection, ref delivery);
        }

        if (_uncongested is not null && _queue.Count < _congestionLowWater)
        {
            ReleaseCongestionLocked();
        }
    }

    private void ReleaseCongestionLocked()
    {
        var waiters = _uncongested;
        _uncongested = null;
        waiters?.TrySetResult();
    }

    /// <summary>Appends a QoS 1/2 delivery of a persistent session to the store; true when it did.</summary>
    private bool StoreLocked(ref Delivery delivery)
    {
        if (delivery.Qos == 0 || !IsStored)
        {
            return false;
        }

        delivery.Stored = true;
        _broker.Store!.PutDelivery(ClientId, new MqttStoredDelivery(
            delivery.Sequence,
            _broker.StoreIdOf(delivery.Message),
            delivery.Message,
            delivery.Qos,
            delivery.Retain,
            0,
            MqttDeliveryState.Queued,
            delivery.SubscriptionIds.IsEmpty ? [] : delivery.SubscriptionIds.ToArray()));
        return true;
    }

    private void SendNewLocked(MqttConnection connection, ref Delivery delivery)
    {
        if (delivery.Qos == 0)
        {
            Send(connection, delivery, dup: false);
            return;
        }

        ushort packetId;
        do
        {
            packetId = ++_nextPacketId;
            if (packetId == 0)
            {
                packetId = _nextPacketId = 1;
            }
        }
        while (_inflight.ContainsKey(packetId));

        delivery.PacketId = packetId;
        delivery.State = MqttDeliveryState.Sent;

        // A message the client cannot take (its Maximum Packet Size) is discarded for it, not left in flight
        // where it would hold a slot of the window forever (MQTT-3.1.2-25).
        if (Send(connection, delivery, dup: false))
        {
            _inflight[packetId] = delivery;
            if (delivery.Stored)
            {
                _broker.Store!.UpdateDelivery(ClientId, delivery.Sequence, packetId, MqttDeliveryState.Sent);
            }
        }
        else if (delivery.Stored)
        {
            _broker.Store!.RemoveDelivery(ClientId, delivery.Sequence);
        }
    }

    private bool Send(MqttConnection connection, in Delivery delivery, bool dup)
    {
        var message = delivery.Message;
        return connection.SendPublish(
            message.TopicUtf8,
            message.Payload.Span,
            message.Properties.Span,
            delivery.Qos,
            delivery.Retain,
            dup,
            delivery.PacketId,
            new MqttPublishExtras(_broker.RemainingExpiry(message.ExpiresAt), delivery.SubscriptionIds));
    }
}

/// <summary>What became of a message routed to one session.</summary>
internal enum DeliveryOutcome
{
    /// <summary>Written to the client's connection.</summary>
    Sent,

    /// <summary>Written to the client's connection, and kept in the state store until acknowledged.</summary>
    SentAndStored,

    /// <summary>Waiting in the session's queue.</summary>
    Queued,

    /// <summary>Waiting in the session's queue and in the state store.</summary>
    QueuedAndStored,

    /// <summary>A QoS 0 message not delivered (offline clean session, or a full queue).</summary>
    Dropped,

    /// <summary>A QoS 1/2 message refused because the session's queue is full.</summary>
    Refused,
}
