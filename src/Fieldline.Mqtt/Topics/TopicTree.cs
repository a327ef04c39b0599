using System.Text;

namespace Fieldline.Mqtt.Topics;

/// <summary>
/// The subscriptions of all sessions, organised as a tree with one level of the topic filter per node.
/// </summary>
/// <remarks>
/// Design note. Routing a message walks the tree along the levels of its topic, branching into at most three
/// children per level: the exact level, '+', and '#'. The cost depends on the depth of the topic and the number
/// of matching filters, not on the number of subscriptions, as a scan would. Children are keyed by the level's
/// UTF-8 bytes and looked up with a span through an alternate comparer, so a lookup neither decodes nor
/// allocates. Writers (SUBSCRIBE, UNSUBSCRIBE) are rare next to readers (every PUBLISH), hence the
/// reader-writer lock; matches are appended to a caller-owned list that is reused for every message.
/// </remarks>
/// <typeparam name="TSubscriber">Who subscribes (the broker's session).</typeparam>
internal sealed class TopicTree<TSubscriber> : IDisposable
    where TSubscriber : class
{
    private readonly Node _root = new();
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private int _count;

    /// <summary>The number of (subscriber, filter) pairs.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds or replaces the subscription of <paramref name="subscriber"/> to <paramref name="filter"/>; true when it is new.</summary>
    public bool Add(string filter, TSubscriber subscriber, TopicSubscription<TSubscriber> subscription)
    {
        var bytes = Encoding.UTF8.GetBytes(filter);
        _lock.EnterWriteLock();
        try
        {
            var node = _root;
            foreach (var level in new LevelEnumerator(bytes))
            {
                node = node.GetOrAddChild(level);
            }

            node.Subscribers ??= [];
            var added = !node.Subscribers.ContainsKey(subscriber);
            node.Subscribers[subscriber] = subscription;
            if (added)
            {
                _count++;
            }

            return added;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Removes a subscription; false when there was none.</summary>
    public bool Remove(string filter, TSubscriber subscriber)
    {
        var bytes = Encoding.UTF8.GetBytes(filter);
        _lock.EnterWriteLock();
        try
        {
            var path = new List<(Node Parent, byte[] Key, Node Child)>();
            var node = _root;
            foreach (var level in new LevelEnumerator(bytes))
            {
                var child = node.FindChild(level, out var key);
                if (child is null)
                {
                    return false;
                }

                path.Add((node, key!, child));
                node = child;
            }

            if (node.Subscribers is null || !node.Subscribers.Remove(subscriber))
            {
                return false;
            }

            _count--;

            // Prune nodes left with neither subscribers nor children, so that churn does not grow the tree.
            for (var i = path.Count - 1; i >= 0; i--)
            {
                var (parent, key, child) = path[i];
                if (!child.IsEmpty)
                {
                    break;
                }

                parent.RemoveChild(key);
            }

            return true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Dispose() => _lock.Dispose();

    /// <summary>Appends every subscription whose filter matches <paramref name="topic"/> to <paramref name="matches"/>.</summary>
    public void Match(ReadOnlySpan<byte> topic, List<TopicSubscription<TSubscriber>> matches)
    {
        _lock.EnterReadLock();
        try
        {
            MatchLevel(_root, topic, exhausted: false, first: true, matches);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private static void MatchLevel(Node node, ReadOnlySpan<byte> rest, bool exhausted, bool first, List<TopicSubscription<TSubscriber>> matches)
    {
        if (exhausted)
        {
            AddAll(node.Subscribers, matches);

            // "a/#" also matches "a".
            AddAll(node.MultiLevel?.Subscribers, matches);
            return;
        }

        var slash = rest.IndexOf((byte)'/');
        var level = slash < 0 ? rest : rest[..slash];
        var nextRest = slash < 0 ? default : rest[(slash + 1)..];
        var nextExhausted = slash < 0;

        // Wildcards at the first level never match topics starting with '$' (MQTT-4.7.2-1).
        var dollar = first && !level.IsEmpty && level[0] == '$';
        if (!dollar)
        {
            AddAll(node.MultiLevel?.Subscribers, matches);
            if (node.SingleLevel is { } single)
            {
                MatchLevel(single, nextRest, nextExhausted, first: false, matches);
            }
        }

        if (node.Children is { } children && children.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(level, out var child))
        {
            MatchLevel(child, nextRest, nextExhausted, first: false, matches);
        }
    }

    private static void AddAll(Dictionary<TSubscriber, TopicSubscription<TSubscriber>>? subscribers, List<TopicSubscription<TSubscriber>> matches)
    {
        if (subscribers is null)
        {
            return;
        }

        foreach (var subscription in subscribers.Values)
        {
            matches.Add(subscription);
        }
    }

    private sealed class Node
    {
        public Dictionary<byte[], Node>? Children { get; private set; }

        public Node? SingleLevel { get; private set; }

        public Node? MultiLevel { get; private set; }

        public Dictionary<TSubscriber, TopicSubscription<TSubscriber>>? Subscribers { get; set; }

        public bool IsEmpty => (Subscribers is null || Subscribers.Count == 0) && (Children is null || Children.Count == 0) && SingleLevel is null && MultiLevel is null;

        public Node GetOrAddChild(ReadOnlySpan<byte> level)
        {
            if (IsSingle(level))
            {
                return SingleLevel ??= new Node();
            }

            if (IsMulti(level))
            {
                return MultiLevel ??= new Node();
            }

            Children ??= new Dictionary<byte[], Node>(ByteArrayComparer.Instance);
            var lookup = Children.GetAlternateLookup<ReadOnlySpan<byte>>();
            if (!lookup.TryGetValue(level, out var child))
            {
                child = new Node();
                Children[level.ToArray()] = child;
            }

            return child;
        }

        public Node? FindChild(ReadOnlySpan<byte> level, out byte[]? key)
        {
            if (IsSingle(level))
            {
                key = "+"u8.ToArray();
                return SingleLevel;
            }

            if (IsMulti(level))
            {
                key = "#"u8.ToArray();
                return MultiLevel;
            }

            key = null;
            if (Children is null)
            {
                return null;
            }

            var lookup = Children.GetAlternateLookup<ReadOnlySpan<byte>>();
            if (lookup.TryGetValue(level, out var actualKey, out var child))
            {
                key = actualKey;
                return child;
            }

            return null;
        }

        public void RemoveChild(byte[] key)
        {
            if (IsSingle(key))
            {
                SingleLevel = null;
            }
            else if (IsMulti(key))
            {
                MultiLevel = null;
            }
            else
            {
                Children?.Remove(key);
            }
        }

        private static bool IsSingle(ReadOnlySpan<byte> level) => level.Length == 1 && level[0] == '+';

        private static bool IsMulti(ReadOnlySpan<byte> level) => level.Length == 1 && level[0] == '#';
    }

    /// <summary>Enumerates the '/'-separated levels of a topic or filter, including empty ones.</summary>
    private ref struct LevelEnumerator
    {
        private ReadOnlySpan<byte> _rest;
        private bool _done;

        public LevelEnumerator(ReadOnlySpan<byte> value)
        {
            _rest = value;
            _done = false;
            Current = default;
        }

        public ReadOnlySpan<byte> Current { get; private set; }

        public readonly LevelEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_done)
            {
                return false;
            }

            var slash = _rest.IndexOf((byte)'/');
            if (slash < 0)
            {
                Current = _rest;
                _done = true;
            }
            else
            {
                Current = _rest[..slash];
                _rest = _rest[(slash + 1)..];
            }

            return true;
        }
    }
}

/// <summary>A subscription as stored in the tree: who, to what, with which options.</summary>
internal sealed record TopicSubscription<TSubscriber>(TSubscriber Subscriber, string Filter, byte MaximumQoS, bool NoLocal, bool RetainAsPublished, byte RetainHandling, uint SubscriptionIdentifier = 0)
    where TSubscriber : class
{
    /// <summary>
    /// The client whose <see cref="Server.MqttBrokerPolicy.CanReceive"/> each message must pass, when the policy granted
    /// the subscription with <see cref="Server.MqttSubscribeAuthorization.GrantedWithDeliveryCheck"/>; null otherwise.
    /// </summary>
    public Server.MqttClientContext? ReceiveCheck { get; init; }
}

/// <summary>Equality of byte arrays by content, with span lookups (no allocation per lookup).</summary>
internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly ByteArrayComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<byte> alternate)
    {
        var hash = default(HashCode);
        hash.AddBytes(alternate);
        return hash.ToHashCode();
    }

    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
}
