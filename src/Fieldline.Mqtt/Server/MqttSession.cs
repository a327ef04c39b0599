using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// The state MQTT keeps for a client id across connections: subscriptions, QoS 1 messages in flight towards it,
/// messages queued while it is offline or its window is full, and QoS 2 packet ids received but not released.
/// </summary>
internal sealed class MqttSession
{
    private readonly Lock _sync = new();
    private readonly Dictionary<ushort, InflightMessage> _inflight = [];
    private readonly Queue<QueuedMessage> _queue = new();
    private readonly HashSet<ushort> _incomingQos2 = [];
    private readonly Dictionary<string, TopicSubscription<MqttSession>> _subscriptions = new(StringComparer.Ordinal);
    private TaskCompletionSource? _uncongested;
    private ushort _nextPacketId;
    private long _sequence;

    public MqttSession(string clientId, string? owner)
    {
        ClientId = clientId;
        Owner = owner;
    }

    public string ClientId { get; }

    /// <summary>The user name that created the session; only the same user name may resume or take it over.</summary>
    public string? Owner { get; }

    /// <summary>The connection currently attached, or null while the client is offline.</summary>
    public MqttConnection? Connection { get; private set; }

    /// <summary>Seconds the session outlives its connection; <see cref="uint.MaxValue"/> means forever.</summary>
    public uint ExpirySeconds { get; set; }

    public long DisconnectedAtTimestamp { get; set; }

    public bool IsPersistent => ExpirySeconds > 0;

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

    /// <summary>
    /// Attaches a connection: <paramref name="beforeVisible"/> (CONNACK) is written first, then the connection
    /// becomes the session's, then unacknowledged messages are resent with DUP in their original order
    /// (MQTT-4.4.0-1) and queued ones follow. All under the session's lock, so no delivery interleaves.
    /// </summary>
    public void AttachAndResume(MqttConnection connection, Action beforeVisible, int maxInflight)
    {
        lock (_sync)
        {
            beforeVisible();
            Connection = connection;
            foreach (var (packetId, inflight) in _inflight.OrderBy(pair => pair.Value.Sequence))
            {
                connection.SendPublish(inflight.Message.TopicUtf8, inflight.Message.Payload.Span, inflight.Message.Properties.Span, 1, inflight.Retain, dup: true, packetId);
            }

            DrainQueueLocked(maxInflight);
        }
    }

    /// <summary>Detaches <paramref name="connection"/> if it is still the one attached; false when another took over.</summary>
    public bool Detach(MqttConnection connection)
    {
        lock (_sync)
        {
            if (Connection != connection)
            {
                return false;
            }

            Connection = null;
            ReleaseCongestionLocked();
            return true;
        }
    }

    public void SetSubscription(TopicSubscription<MqttSession> subscription)
    {
        lock (_sync)
        {
            _subscriptions[subscription.Filter] = subscription;
        }
    }

    public bool RemoveSubscription(string filter)
    {
        lock (_sync)
        {
            return _subscriptions.Remove(filter);
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
            return _incomingQos2.Add(packetId);
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
            return _incomingQos2.Remove(packetId);
        }
    }

    /// <summary>
    /// Delivers a QoS 1 message: sent at once when the client is connected and its window has room, otherwise
    /// queued. Returns false when the queue was full and the oldest message was dropped.
    /// </summary>
    /// <remarks>
    /// <paramref name="congested"/> is the client's connection when, connected, it has <paramref name="highWater"/>
    /// or more messages queued: the publisher should then wait on <see cref="WhenUncongested"/>.
    /// </remarks>
    public bool EnqueueQos1(MqttApplicationMessage message, bool retain, int maxQueued, int maxInflight, int highWater, out MqttConnection? sentTo, out MqttConnection? congested)
    {
        sentTo = null;
        congested = null;
        lock (_sync)
        {
            var connection = Connection;
            if (connection is not null && _queue.Count == 0 && _inflight.Count < Math.Min(maxInflight, connection.ClientReceiveMaximum))
            {
                SendLocked(connection, message, retain);
                sentTo = connection;
                return true;
            }

            var dropped = false;
            if (_queue.Count >= maxQueued)
            {
                _queue.Dequeue();
                dropped = true;
            }

            _queue.Enqueue(new QueuedMessage(message, retain));
            if (connection is not null && _queue.Count >= highWater)
            {
                congested = connection;
            }

            return !dropped;
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
    public bool Acknowledge(ushort packetId, int maxInflight)
    {
        lock (_sync)
        {
            if (!_inflight.Remove(packetId))
            {
                return false;
            }

            DrainQueueLocked(maxInflight);
            return true;
        }
    }

    /// <summary>Forgets everything when the session ends (clean start or expiry).</summary>
    public void Clear()
    {
        lock (_sync)
        {
            _inflight.Clear();
            _queue.Clear();
            _incomingQos2.Clear();
            _subscriptions.Clear();
            ReleaseCongestionLocked();
        }
    }

    private void DrainQueueLocked(int maxInflight)
    {
        var connection = Connection;
        if (connection is null)
        {
            return;
        }

        var window = Math.Min(maxInflight, connection.ClientReceiveMaximum);
        while (_queue.Count > 0 && _inflight.Count < window)
        {
            var queued = _queue.Dequeue();
            SendLocked(connection, queued.Message, queued.Retain);
        }

        if (_uncongested is not null && _queue.Count < _congestionLowWater)
        {
            ReleaseCongestionLocked();
        }
    }

    private int _congestionLowWater = int.MaxValue;

    private void ReleaseCongestionLocked()
    {
        var waiters = _uncongested;
        _uncongested = null;
        waiters?.TrySetResult();
    }

    private void SendLocked(MqttConnection connection, MqttApplicationMessage message, bool retain)
    {
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

        // A message the client cannot take (its Maximum Packet Size) is discarded for it, not left in flight
        // where it would hold a slot of the window forever (MQTT-3.1.2-25).
        if (connection.SendPublish(message.TopicUtf8, message.Payload.Span, message.Properties.Span, 1, retain, dup: false, packetId))
        {
            _inflight[packetId] = new InflightMessage(message, retain, ++_sequence);
        }
    }

    private readonly record struct InflightMessage(MqttApplicationMessage Message, bool Retain, long Sequence);

    private readonly record struct QueuedMessage(MqttApplicationMessage Message, bool Retain);
}
