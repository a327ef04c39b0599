using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Fieldline.Mqtt.Persistence;
using Fieldline.Mqtt.Protocol;
using Fieldline.Mqtt.Topics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// An MQTT 3.1.1 and 5.0 broker. Transport-agnostic: it serves any <see cref="ConnectionContext"/> handed to
/// <see cref="RunConnectionAsync"/>, which <see cref="MqttConnectionHandler"/> does for Kestrel listeners.
/// What clients may do is decided by a <see cref="MqttBrokerPolicy"/>.
/// </summary>
public sealed class MqttBroker : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, MqttSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<MqttConnection, byte> _connections = new();
    private readonly Lock _sessionLock = new();
    private readonly Lock _serverRoutingLock = new();
    private readonly RoutingScratch _serverScratch = new();
    private readonly ITimer _expiryTimer;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, SharedSubscriptionGroup> _sharedGroups = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DelayedWill> _delayedWills = new(StringComparer.Ordinal);
    private readonly SysTopicPublisher? _sysTopics;
    private int _assignedIds;
    private long _lastStoreId;
    private int _started;

    /// <summary>Creates a broker.</summary>
    /// <param name="options">Limits and timings.</param>
    /// <param name="policy">Who may connect, publish and subscribe; everything when null.</param>
    /// <param name="timeProvider">The clock for keep-alive and expiry.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="meterFactory">Metrics.</param>
    /// <param name="store">
    /// Where persistent sessions and retained messages are kept across restarts; in memory only when null.
    /// Call <see cref="StartAsync"/> before serving connections so that the stored state is loaded.
    /// </param>
    public MqttBroker(MqttBrokerOptions options, MqttBrokerPolicy? policy = null, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null, IMqttStateStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        Policy = policy ?? MqttBrokerPolicy.AllowAll;
        TimeProvider = timeProvider ?? TimeProvider.System;
        Store = store;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MqttBroker>();
        Metrics = new MqttBrokerMetrics(this, meterFactory);
        Retained = new RetainedMessageStore(this);
        Admission = new ConnectionAdmission(options, TimeProvider, Metrics);
        Limits = new ClientLimits(options, Metrics);
        _expiryTimer = TimeProvider.CreateTimer(_ => ExpireSessions(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        _sysTopics = options.SysTopicInterval > TimeSpan.Zero ? new SysTopicPublisher(this, options.SysTopicInterval) : null;
    }

    /// <summary>The broker's options.</summary>
    public MqttBrokerOptions Options { get; }

    /// <summary>The policy deciding what clients may do.</summary>
    public MqttBrokerPolicy Policy { get; }

    /// <summary>The clock for keep-alive and expiry.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>Clients connected now.</summary>
    public int ConnectedClients => _connections.Count;

    /// <summary>Sessions, connected or persistent.</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>Subscriptions of all sessions.</summary>
    public int SubscriptionCount => Subscriptions.Count;

    /// <summary>Retained messages.</summary>
    public int RetainedCount => Retained.Count;

    /// <summary>PUBLISH packets received since start.</summary>
    public long MessagesReceived => Metrics.MessagesReceived;

    /// <summary>PUBLISH packets sent to subscribers since start.</summary>
    public long MessagesSent => Metrics.MessagesSent;

    internal ILogger Logger { get; }

    internal MqttBrokerMetrics Metrics { get; }

    internal ConnectionAdmission Admission { get; }

    internal ClientLimits Limits { get; }

    internal TopicTree<MqttSession> Subscriptions { get; } = new();

    internal TopicTree<SharedSubscriptionGroup> SharedSubscriptions { get; } = new();

    internal RetainedMessageStore Retained { get; }

    internal IMqttStateStore? Store { get; }

    /// <summary>
    /// Loads the sessions and retained messages kept in the state store. Call once, before serving connections;
    /// without a store it does nothing.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) == 1 || Store is null)
        {
            return;
        }

        var state = await Store.LoadAsync(cancellationToken).ConfigureAwait(false);
        var now = TimeProvider.GetUtcNow();
        foreach (var message in state.Retained)
        {
            Retained.Restore(message);
        }

        foreach (var stored in state.Sessions)
        {
            var session = new MqttSession(this, stored.Session.ClientId, stored.Session.Owner);
            session.Restore(stored, now);
            foreach (var delivery in stored.Deliveries)
            {
                _lastStoreId = Math.Max(_lastStoreId, delivery.MessageId);
            }

            _sessions[session.ClientId] = session;
            foreach (var subscription in RestoredSubscriptions.Authorize(this, session))
            {
                AddToTrees(session, subscription);
            }
        }

        Log.StateLoaded(Logger, state.Sessions.Count, state.Retained.Count);
    }

    /// <summary>The store's identity of a message, assigned on first use; one per message however many sessions it is queued for.</summary>
    internal long StoreIdOf(MqttApplicationMessage message)
    {
        var id = Volatile.Read(ref message.StoreId);
        if (id != 0)
        {
            return id;
        }

        var assigned = Interlocked.Increment(ref _lastStoreId);
        return Interlocked.CompareExchange(ref message.StoreId, assigned, 0) is var previous && previous != 0 ? previous : assigned;
    }

    /// <summary>
    /// The Message Expiry Interval to send with a delivery: what is left of the message's lifetime, not what it
    /// had (MQTT-3.3.2-6); null for a message that does not expire.
    /// </summary>
    internal uint? RemainingExpiry(DateTimeOffset? expiresAt) =>
        expiresAt is { } at ? (uint)Math.Max(0, Math.Ceiling((at - TimeProvider.GetUtcNow()).TotalSeconds)) : null;

    /// <summary>Adds a session's subscription to the routing trees: the plain tree, or its shared group's.</summary>
    internal void AddToTrees(MqttSession session, TopicSubscription<MqttSession> subscription)
    {
        if (SharedSubscriptionFilter.TryParse(subscription.Filter, out var shareName, out var topicFilter))
        {
            lock (_sessionLock)
            {
                var group = _sharedGroups.GetOrAdd(subscription.Filter, f => new SharedSubscriptionGroup(f, shareName, topicFilter));
                group.Add(subscription);
                SharedSubscriptions.Add(topicFilter, group, new TopicSubscription<SharedSubscriptionGroup>(group, topicFilter, 2, false, false, 0));
            }
        }
        else
        {
            Subscriptions.Add(subscription.Filter, session, subscription);
        }
    }

    /// <summary>Removes a session's subscription from the routing trees.</summary>
    internal void RemoveFromTrees(MqttSession session, string filter)
    {
        if (SharedSubscriptionFilter.IsShared(filter))
        {
            lock (_sessionLock)
            {
                if (_sharedGroups.TryGetValue(filter, out var group) && group.Remove(session) == 0)
                {
                    _sharedGroups.TryRemove(filter, out _);
                    SharedSubscriptions.Remove(group.TopicFilter, group);
                }
            }
        }
        else
        {
            Subscriptions.Remove(filter, session);
        }
    }

    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>Serves one client connection until it closes.</summary>
    public async Task RunConnectionAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (!Admission.HasRoom())
        {
            // Full: closed unanswered, so that a flood of sockets costs nothing (returning closes the transport).
            Log.ConnectionRejected(Logger, connection.RemoteEndPoint?.ToString(), Options.MaximumConnections);
            return;
        }

        var mqtt = new MqttConnection(this, connection);
        await mqtt.RunAsync().ConfigureAwait(false);
    }

    /// <summary>Publishes a message on behalf of the server (not subject to the policy). Ignored once the broker is stopping.</summary>
    public void Publish(MqttApplicationMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_stopping.IsCancellationRequested)
        {
            // Shutting down: the sessions are being saved and the trees released; events of the shutdown itself
            // (connections closing) have nowhere to go.
            return;
        }

        if (message.Retain)
        {
            Retained.TrySet(message);
        }

        lock (_serverRoutingLock)
        {
            var route = new RouteRequest(message.TopicUtf8, message.Payload.Span, message.Properties.Span, message.QualityOfService, message.Retain, message.ExpiresAt, origin: null) { Message = message };
            Route(ref route, _serverScratch);
        }
    }

    /// <summary>Closes the connection of a client, if connected (for example when its credentials are revoked).</summary>
    public bool Disconnect(string clientId, MqttReasonCode reason = MqttReasonCode.AdministrativeAction)
    {
        if (_sessions.TryGetValue(clientId, out var session) && session.Connection is { } connection)
        {
            connection.Close(reason, MqttDisconnectKind.ServerInitiated);
            return true;
        }

        return false;
    }

    /// <summary>Closes the connections of every client the predicate selects; returns how many.</summary>
    public int DisconnectWhere(Func<MqttClientContext, bool> predicate, MqttReasonCode reason = MqttReasonCode.AdministrativeAction)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var closed = 0;
        foreach (var connection in _connections.Keys)
        {
            if (connection.Client is { } client && predicate(client))
            {
                connection.Close(reason, MqttDisconnectKind.ServerInitiated);
                closed++;
            }
        }

        return closed;
    }

    /// <summary>Client ids of the clients connected now.</summary>
    public IReadOnlyList<MqttClientContext> GetConnectedClients() =>
        [.. _connections.Keys.Select(c => c.Client).OfType<MqttClientContext>()];

    /// <summary>Disconnects every client (5.0: Server shutting down) and stops timers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        // Each client is told why first (5.0: DISCONNECT 0x8B), then the stopping token ends what still runs. The other
        // way round, a read loop cancelled by the token could clean its connection up before the DISCONNECT was queued,
        // and the client saw the socket close without a word.
        foreach (var connection in _connections.Keys)
        {
            connection.Close(MqttReasonCode.ServerShuttingDown, MqttDisconnectKind.ServerInitiated);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_sysTopics is not null)
        {
            await _sysTopics.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var connection in _connections.Keys)
        {
            connection.Close(MqttReasonCode.ServerShuttingDown, MqttDisconnectKind.ServerInitiated); // any that came meanwhile
        }

        // Closing connections clean up on their own (wills, session detach): let them finish with the tree before it goes.
        if (!_connections.IsEmpty)
        {
            await _allClosed.Task.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await _expiryTimer.DisposeAsync().ConfigureAwait(false);
        foreach (var delayed in _delayedWills.Values)
        {
            delayed.Dispose();
        }

        Subscriptions.Dispose();
        SharedSubscriptions.Dispose();
        Metrics.Dispose();
        _stopping.Dispose();
    }

    internal void Register(MqttConnection connection) => _connections.TryAdd(connection, 0);

    internal void Unregister(MqttConnection connection)
    {
        _connections.TryRemove(connection, out _);
        if (_stopping.IsCancellationRequested && _connections.IsEmpty)
        {
            _allClosed.TrySetResult();
        }
    }

    internal string AssignClientId() => $"fl-{Guid.NewGuid():N}-{Interlocked.Increment(ref _assignedIds)}";

    /// <summary>
    /// Binds a connection to the session of its client id: takes over a connected session (the old connection is
    /// closed with Session taken over, MQTT-3.1.4-3), resumes a persistent one, or starts a new one.
    /// <paramref name="acknowledge"/> writes CONNACK before the session becomes visible to routing.
    /// Returns null when the client id's session belongs to another user name.
    /// </summary>
    internal MqttSession? AttachSession(MqttConnection connection, string clientId, string? owner, bool cleanStart, uint expirySeconds, Action<bool> acknowledge, out bool sessionPresent)
    {
        MqttConnection? previous;
        MqttSession session;
        lock (_sessionLock)
        {
            _sessions.TryGetValue(clientId, out var existing);
            if (existing is not null && !string.Equals(existing.Owner, owner, StringComparison.Ordinal))
            {
                sessionPresent = false;
                return null;
            }

            previous = existing?.Connection;
            if (existing is not null && cleanStart)
            {
                // A clean start ends the old session, which publishes a will still waiting for its delay (3.1.2.5).
                EndSession(existing, publishWill: true);
                existing = null;
            }

            session = existing ?? _sessions.GetOrAdd(clientId, id => new MqttSession(this, id, owner));
            sessionPresent = existing is not null;
            var present = sessionPresent;
            session.AttachAndResume(connection, expirySeconds, () => acknowledge(present));
        }

        // The client is back before its delayed will was due: the will is not sent (MQTT-3.1.3-9).
        if (_delayedWills.TryRemove(clientId, out var delayed))
        {
            delayed.Dispose();
        }

        if (previous is not null && previous != connection)
        {
            Log.SessionTakenOver(Logger, clientId);
            previous.Close(MqttReasonCode.SessionTakenOver, MqttDisconnectKind.TakenOver);
        }

        return session;
    }

    /// <summary>
    /// Publishes a client's last will now, or after its Will Delay Interval (capped by the session's expiry), unless
    /// the client reconnects first.
    /// </summary>
    internal void PublishWill(MqttSession session, MqttApplicationMessage will, uint delaySeconds, uint? expirySeconds)
    {
        var delay = Math.Min(delaySeconds, session.IsPersistent ? session.ExpirySeconds : 0);
        if (delay == 0)
        {
            Publish(WithExpiry(will, expirySeconds));
            return;
        }

        if (session.Connection is not null)
        {
            // Another connection has resumed the session already (a takeover): the delayed will is not due.
            return;
        }

        var delayed = new DelayedWill(will, expirySeconds);
        if (_delayedWills.TryGetValue(session.ClientId, out var earlier))
        {
            earlier.Dispose();
        }

        _delayedWills[session.ClientId] = delayed;
        delayed.Timer = TimeProvider.CreateTimer(
            _ =>
            {
                if (_delayedWills.TryRemove(new KeyValuePair<string, DelayedWill>(session.ClientId, delayed)))
                {
                    delayed.Dispose();
                    Publish(WithExpiry(delayed.Message, delayed.ExpirySeconds));
                }
            },
            null,
            TimeSpan.FromSeconds(delay),
            Timeout.InfiniteTimeSpan);
    }

    private MqttApplicationMessage WithExpiry(MqttApplicationMessage will, uint? expirySeconds) => expirySeconds is { } seconds
        ? new MqttApplicationMessage(will.TopicUtf8, will.Payload, will.QualityOfService, will.Retain, will.Properties) { ExpiresAt = TimeProvider.GetUtcNow().AddSeconds(seconds) }
        : will;

    /// <summary>
    /// Detaches a closed connection; a session that does not outlive it is removed. Returns false when another
    /// connection had already taken the session over.
    /// </summary>
    internal bool DetachSession(MqttConnection connection, MqttSession session)
    {
        lock (_sessionLock)
        {
            var current = _sessions.TryGetValue(session.ClientId, out var found) && found == session;
            if (!current)
            {
                // Replaced by a clean start while this connection still ran: whatever it added since is orphaned.
                RemoveSubscriptions(session);
                session.Clear();
            }

            var reassign = new List<Delivery>();
            if (!session.Detach(connection, TimeProvider.GetUtcNow(), reassign))
            {
                return false;
            }

            Reassign(session, reassign);
            if (current && !session.IsPersistent)
            {
                RemoveSubscriptions(session);
                session.Clear();
                _sessions.TryRemove(session.ClientId, out _);
            }

            return current;
        }
    }

    /// <summary>Hands messages a shared-subscription member did not receive to other members of their groups.</summary>
    private void Reassign(MqttSession from, List<Delivery> deliveries)
    {
        foreach (var delivery in deliveries)
        {
            var member = delivery.Group!.Pick(delivery.Qos, except: from);
            if (member is null)
            {
                // Nobody else can take it: it stays with the member it was for, which gets it when it returns.
                member = new TopicSubscription<MqttSession>(from, delivery.Group.Filter, delivery.Qos, false, false, 0);
            }

            Metrics.SharedReassigned();
            member.Subscriber.Enqueue(delivery.Message, delivery.Qos, delivery.Retain, delivery.SubscriptionIds, delivery.Group, int.MaxValue, out _, out _);
        }
    }

    /// <summary>
    /// Routes a message to every matching session and to one member of every matching shared subscription. QoS 0
    /// deliveries to connected clients are written straight from the caller's spans into each subscriber's output;
    /// a QoS 1/2 delivery copies the message once, shared by all its subscribers. Returns a subscriber whose output
    /// is backed up, for the caller to wait on before reading more; <paramref name="route"/> tells whether the state
    /// store holds a delivery (the publisher's acknowledgement then waits for it) and whether a queue refused one.
    /// </summary>
    internal MqttConnection? Route(ref RouteRequest route, RoutingScratch scratch)
    {
        var matches = scratch.Matches;
        matches.Clear();
        Subscriptions.Match(route.Topic, matches);
        var shared = scratch.SharedMatches;
        shared.Clear();
        if (SharedSubscriptions.Count > 0)
        {
            SharedSubscriptions.Match(route.Topic, shared);
        }

        if (matches.Count == 0 && shared.Count == 0)
        {
            return null;
        }

        // No Local is a property of one subscription: the publisher's own No Local subscriptions drop out before
        // its other matching subscriptions are merged; so do subscriptions whose delivery check refuses the topic.
        var kept = 0;
        for (var i = 0; i < matches.Count; i++)
        {
            var match = matches[i];
            if (!(match.NoLocal && match.Subscriber == route.Origin) && (match.ReceiveCheck is null || Policy.CanReceive(match.ReceiveCheck, route.Topic)))
            {
                matches[kept++] = match;
            }
        }

        matches.RemoveRange(kept, matches.Count - kept);

        // A client with overlapping subscriptions gets the message once, at the highest QoS granted, with the
        // identifiers of all of them (MQTT-3.3.4-2, -3).
        scratch.Identifiers.Clear();
        if (matches.Count > 1)
        {
            Deduplicate(matches, scratch.Seen, scratch.Identifiers);
        }

        MqttConnection? backedUp = null;
        foreach (var match in matches)
        {
            var session = match.Subscriber;
            var identifiers = scratch.Identifiers.TryGetValue(session, out var many) ? many : new SubscriptionIdentifiers(match.SubscriptionIdentifier);
            Deliver(ref route, match, session, identifiers, null, ref backedUp);
        }

        foreach (var groupMatch in shared)
        {
            var group = groupMatch.Subscriber;
            if (group.Pick(route.Qos) is { } member)
            {
                Deliver(ref route, member, member.Subscriber, new SubscriptionIdentifiers(member.SubscriptionIdentifier), group, ref backedUp);
            }
        }

        matches.Clear();
        shared.Clear();
        return backedUp;
    }

    private void Deliver(ref RouteRequest route, TopicSubscription<MqttSession> match, MqttSession session, SubscriptionIdentifiers identifiers, SharedSubscriptionGroup? group, ref MqttConnection? backedUp)
    {
        var deliveryQos = Math.Min(route.Qos, match.MaximumQoS);
        var deliveryRetain = match.RetainAsPublished && route.Retain;
        var connection = session.Connection;
        if (deliveryQos == 0 && connection is not null)
        {
            connection.SendPublish(route.Topic, route.Payload, route.Properties, 0, deliveryRetain, dup: false, packetId: 0, new MqttPublishExtras(RemainingExpiry(route.ExpiresAt), identifiers));
            if (connection.IsBackedUp)
            {
                backedUp = connection;
            }

            return;
        }

        if (deliveryQos == 0 && !session.IsPersistent)
        {
            return;
        }

        route.Message ??= new MqttApplicationMessage(route.Topic.ToArray(), route.Payload.ToArray(), route.Qos, route.Retain, route.Properties.ToArray()) { ExpiresAt = route.ExpiresAt };
        var outcome = session.Enqueue(route.Message, deliveryQos, deliveryRetain, identifiers, group, Options.QueueHighWaterMark, out var sentTo, out var congested);
        switch (outcome)
        {
            case DeliveryOutcome.SentAndStored or DeliveryOutcome.QueuedAndStored:
                route.Stored = true;
                break;
            case DeliveryOutcome.Refused:
                route.QuotaExceeded = true;
                break;
        }

        if (congested is not null)
        {
            backedUp = congested;
        }
        else if (sentTo is { IsBackedUp: true })
        {
            backedUp = sentTo;
        }
    }

    private static void Deduplicate(List<TopicSubscription<MqttSession>> matches, HashSet<MqttSession> seen, Dictionary<MqttSession, SubscriptionIdentifiers> identifiers)
    {
        // Keep one entry per session: the one with the session's highest QoS among its matches, and, when several
        // matches carry subscription identifiers, all of those (only then is a dictionary entry made).
        seen.Clear();
        var write = 0;
        for (var read = 0; read < matches.Count; read++)
        {
            var match = matches[read];
            if (seen.Add(match.Subscriber))
            {
                matches[write++] = match;
                continue;
            }

            for (var i = 0; i < write; i++)
            {
                var kept = matches[i];
                if (kept.Subscriber != match.Subscriber)
                {
                    continue;
                }

                if (match.SubscriptionIdentifier != 0 || identifiers.ContainsKey(kept.Subscriber))
                {
                    var ids = identifiers.TryGetValue(kept.Subscriber, out var existing) ? existing : new SubscriptionIdentifiers(kept.SubscriptionIdentifier);
                    identifiers[kept.Subscriber] = ids.Add(match.SubscriptionIdentifier);
                }

                if (kept.MaximumQoS < match.MaximumQoS)
                {
                    matches[i] = match;
                }
            }
        }

        matches.RemoveRange(write, matches.Count - write);
        seen.Clear();
    }

    private void RemoveSubscriptions(MqttSession session)
    {
        foreach (var filter in session.GetSubscriptionFilters())
        {
            RemoveFromTrees(session, filter);
        }
    }

    /// <summary>Ends a session (clean start or expiry): its subscriptions leave the trees and the store forgets it.</summary>
    private void EndSession(MqttSession session, bool publishWill)
    {
        RemoveSubscriptions(session);
        session.Clear();
        _sessions.TryRemove(new KeyValuePair<string, MqttSession>(session.ClientId, session));
        if (_delayedWills.TryRemove(session.ClientId, out var delayed))
        {
            delayed.Dispose();
            if (publishWill)
            {
                // The session ends before the will delay: the will goes out now (MQTT-3.1.3-9).
                Publish(WithExpiry(delayed.Message, delayed.ExpirySeconds));
            }
        }
    }

    private void ExpireSessions()
    {
        var now = TimeProvider.GetUtcNow();
        foreach (var session in _sessions.Values)
        {
            if (session.Connection is not null || session.ExpirySeconds == uint.MaxValue || !session.IsPersistent)
            {
                continue;
            }

            if ((now - session.DisconnectedAt).TotalSeconds < session.ExpirySeconds)
            {
                continue;
            }

            lock (_sessionLock)
            {
                if (session.Connection is null && _sessions.TryGetValue(session.ClientId, out var current) && current == session)
                {
                    EndSession(session, publishWill: true);
                }
            }
        }
    }

    private sealed class DelayedWill(MqttApplicationMessage message, uint? expirySeconds) : IDisposable
    {
        public MqttApplicationMessage Message { get; } = message;

        public uint? ExpirySeconds { get; } = expirySeconds;

        public ITimer? Timer { get; set; }

        public void Dispose() => Timer?.Dispose();
    }
}

/// <summary>A message being routed, and what routing it did.</summary>
internal ref struct RouteRequest
{
    public RouteRequest(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> properties, byte qos, bool retain, DateTimeOffset? expiresAt, MqttSession? origin)
    {
        Topic = topic;
        Payload = payload;
        Properties = properties;
        Qos = qos;
        Retain = retain;
        ExpiresAt = expiresAt;
        Origin = origin;
    }

    public ReadOnlySpan<byte> Topic { get; }

    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The message's own 5.0 properties (without Topic Alias and Message Expiry Interval).</summary>
    public ReadOnlySpan<byte> Properties { get; }

    public byte Qos { get; }

    public bool Retain { get; }

    public DateTimeOffset? ExpiresAt { get; }

    /// <summary>The publisher's session (for No Local).</summary>
    public MqttSession? Origin { get; }

    /// <summary>The heap copy of the message, made on the first QoS 1/2 or queued delivery and shared by the rest.</summary>
    public MqttApplicationMessage? Message { get; set; }

    /// <summary>Whether a delivery went into the state store: the publisher's acknowledgement waits for it.</summary>
    public bool Stored { get; set; }

    /// <summary>Whether a full queue refused a QoS 1/2 delivery.</summary>
    public bool QuotaExceeded { get; set; }
}

/// <summary>Per-router reusable buffers, so that routing a message allocates nothing.</summary>
internal sealed class RoutingScratch
{
    public List<TopicSubscription<MqttSession>> Matches { get; } = new(16);

    public List<TopicSubscription<SharedSubscriptionGroup>> SharedMatches { get; } = new(4);

    public HashSet<MqttSession> Seen { get; } = [];

    public Dictionary<MqttSession, SubscriptionIdentifiers> Identifiers { get; } = [];
}
