namespace Fieldline.Mqtt.Server;

/// <summary>One message on its way to one session: queued, or in flight under a packet id.</summary>
internal struct Delivery
{
    public long Sequence;
    public MqttApplicationMessage Message;
    public byte Qos;
    public bool Retain;
    public ushort PacketId;
    public Persistence.MqttDeliveryState State;
    public Protocol.SubscriptionIdentifiers SubscriptionIds;

    /// <summary>The shared subscription it was routed through, so that it can go to another member if this one leaves.</summary>
    public SharedSubscriptionGroup? Group;

    /// <summary>Whether the state store holds it (QoS 1/2 to a persistent session).</summary>
    public bool Stored;

    public readonly int Size => Message.TopicUtf8.Length + Message.Payload.Length + Message.Properties.Length;
}

/// <summary>
/// The FIFO of deliveries waiting for a session, as a ring buffer that can also remove its oldest QoS 0 entry:
/// when a queue is full, QoS 0 messages go first (they were never promised), and accepted QoS 1/2 ones never.
/// </summary>
/// <remarks>
/// A removed QoS 0 entry becomes a tombstone that dequeuing skips, and the search for the next QoS 0 entry
/// resumes where the last one ended, so dropping is amortized O(1) rather than a scan of the queue each time.
/// </remarks>
internal sealed class DeliveryQueue
{
    private Delivery[] _items = new Delivery[4];
    private bool[] _removed = new bool[4];
    private int _head;
    private int _length;
    private int _qos0Cursor;

    /// <summary>Live entries.</summary>
    public int Count { get; private set; }

    /// <summary>Live QoS 0 entries.</summary>
    public int Qos0Count { get; private set; }

    /// <summary>Bytes of topic, payload and properties of the live entries.</summary>
    public long Bytes { get; private set; }

    public void Enqueue(in Delivery delivery)
    {
        if (_length == _items.Length)
        {
            Grow();
        }

        var index = (_head + _length) % _items.Length;
        _items[index] = delivery;
        _removed[index] = false;
        _length++;
        Count++;
        Bytes += delivery.Size;
        if (delivery.Qos == 0)
        {
            Qos0Count++;
        }
    }

    public bool TryPeek(out Delivery delivery)
    {
        SkipRemoved();
        if (_length == 0)
        {
            delivery = default;
            return false;
        }

        delivery = _items[_head];
        return true;
    }

    public bool TryDequeue(out Delivery delivery)
    {
        if (!TryPeek(out delivery))
        {
            return false;
        }

        RemoveHead();
        Count--;
        Bytes -= delivery.Size;
        if (delivery.Qos == 0)
        {
            Qos0Count--;
        }

        return true;
    }

    /// <summary>Removes the oldest QoS 0 entry; false when there is none.</summary>
    public bool TryRemoveOldestQos0(out Delivery removed)
    {
        removed = default;
        if (Qos0Count == 0)
        {
            return false;
        }

        // The cursor only moves forward while entries stay, so the oldest QoS 0 entry is at or after it; should the
        // counts ever disagree, a second pass from the head settles it.
        for (var pass = 0; pass < 2; pass++)
        {
            for (; _qos0Cursor < _length; _qos0Cursor++)
            {
                var index = (_head + _qos0Cursor) % _items.Length;
                if (!_removed[index] && _items[index].Qos == 0)
                {
                    removed = _items[index];
                    _removed[index] = true;
                    _items[index] = default;
                    Count--;
                    Qos0Count--;
                    Bytes -= removed.Size;
                    _qos0Cursor++;
                    return true;
                }
            }

            _qos0Cursor = 0;
        }

        return false;
    }

    /// <summary>Takes out every live entry the predicate selects, keeping the order of the rest.</summary>
    public List<Delivery> RemoveAll(Func<Delivery, bool> predicate)
    {
        var taken = new List<Delivery>();
        var kept = new List<Delivery>(Count);
        while (TryDequeue(out var delivery))
        {
            (predicate(delivery) ? taken : kept).Add(delivery);
        }

        foreach (var delivery in kept)
        {
            Enqueue(delivery);
        }

        return taken;
    }

    public void Clear()
    {
        Array.Clear(_items);
        Array.Clear(_removed);
        _head = _length = _qos0Cursor = 0;
        Count = Qos0Count = 0;
        Bytes = 0;
    }

    private void SkipRemoved()
    {
        while (_length > 0 && _removed[_head])
        {
            RemoveHead();
        }
    }

    private void RemoveHead()
    {
        _items[_head] = default;
        _removed[_head] = false;
        _head = (_head + 1) % _items.Length;
        _length--;
        _qos0Cursor = Math.Max(0, _qos0Cursor - 1);
    }

    private void Grow()
    {
        var items = new Delivery[_items.Length * 2];
        var removed = new bool[items.Length];
        for (var i = 0; i < _length; i++)
        {
            var index = (_head + i) % _items.Length;
            items[i] = _items[index];
            removed[i] = _removed[index];
        }

        _items = items;
        _removed = removed;
        _head = 0;
    }
}
