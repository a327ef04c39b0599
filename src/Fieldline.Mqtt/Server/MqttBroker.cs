using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
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
    private readonly SysTopicPublisher? _sysTopics;
    private int _assignedIds;

    /// <summary>Creates a broker.</summary>
    public MqttBroker(MqttBrokerOptions options, MqttBrokerPolicy? policy = null, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        Policy = policy ?? MqttBrokerPolicy.AllowAll;
        TimeProvider = timeProvider ?? TimeProvider.System;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MqttBroker>();
        Metrics = new MqttBrokerMetrics(this, meterFactory);
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

    internal TopicTree<MqttSession> Subscriptions { get; } = new();

    internal RetainedMessageStore Retained { get; } = new();

    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>Serves one client connection until it closes.</summary>
    public async Task RunConnectionAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var mqtt = new MqttConnection(this, connection);
        await mqtt.RunAsync().ConfigureAwait(false);
    }

    /// <summary>Publishes a message on behalf of the server (not subject to the policy).</summary>
    public void Publish(MqttApplicationMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        lock (_serverRoutingLock)
        {
            Route(message.TopicUtf8, message.Payload.Span, message.Properties.Span, message.QualityOfService, message.Retain, origin: null, message, _serverScratch);
        }

        if (message.Retain)
        {
            Retained.Set(message);
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

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_sysTopics is not null)
        {
            await _sysTopics.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var connection in _connections.Keys)
        {
            connection.Close(MqttReasonCode.ServerShuttingDown, MqttDisconnectKind.ServerInitiated);
        }

        // Closing connections clean up on their own (wills, session detach): let them finish with the tree before it goes.
        if (!_connections.IsEmpty)
        {
            await _allClosed.Task.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await _expiryTimer.DisposeAsync().ConfigureAwait(false);
        Subscriptions.Dispose();
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
                RemoveSubscriptions(existing);
                existing.Clear();
                _sessions.TryRemove(clientId, out _);
                existing = null;
            }

            session = existing ?? _sessions.GetOrAdd(clientId, id => new MqttSession(id, owner));
            sessionPresent = existing is not null;
            session.ExpirySeconds = expirySeconds;
            var present = sessionPresent;
            session.AttachAndResume(connection, () => acknowledge(present), Options.MaximumInflightPerClient);
        }

        if (previous is not null && previous != connection)
        {
            Log.SessionTakenOver(Logger, clientId);
            previous.Close(MqttReasonCode.SessionTakenOver, MqttDisconnectKind.TakenOver);
        }

        return session;
    }

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

            if (!session.Detach(connection))
            {
                return false;
            }

            session.DisconnectedAtTimestamp = TimeProvider.GetTimestamp();
            if (current && !session.IsPersistent)
            {
                RemoveSubscriptions(session);
                session.Clear();
                _sessions.TryRemove(session.ClientId, out _);
            }

            return current;
        }
    }

    /// <summary>
    /// Routes a message to every matching session. QoS 0 deliveries are written straight from the caller's spans
    /// into each subscriber's output; a QoS 1 delivery copies the message once, shared by all its subscribers.
    /// Returns a subscriber whose output is backed up, for the caller to wait on before reading more.
    /// </summary>
    internal MqttConnection? Route(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> properties, byte qos, bool retain, MqttSession? origin, MqttApplicationMessage? message, RoutingScratch scratch)
    {
        var matches = scratch.Matches;
        matches.Clear();
        Subscriptions.Match(topic, matches);
        if (matches.Count == 0)
        {
            return null;
        }

        // A client with overlapping subscriptions gets the message once, at the highest QoS granted (MQTT-3.3.4-2).
        if (matches.Count > 1)
        {
            Deduplicate(matches, scratch.Seen);
        }

        MqttConnection? backedUp = null;
        foreach (var match in matches)
        {
            var session = match.Subscriber;
            if (match.NoLocal && session == origin)
            {
                continue;
            }

            var deliveryQos = Math.Min(qos, match.MaximumQoS);
            var deliveryRetain = match.RetainAsPublished && retain;
            if (deliveryQos == 0)
            {
                var connection = session.Connection;
                if (connection is null)
                {
                    continue;
                }

                connection.SendPublish(topic, payload, properties, 0, deliveryRetain, dup: false, packetId: 0);
                if (connection.IsBackedUp)
                {
                    backedUp = connection;
                }
            }
            else
            {
                message ??= new MqttApplicationMessage(topic.ToArray(), payload.ToArray(), qos, retain, properties.ToArray());
                if (!session.EnqueueQos1(message, deliveryRetain, Options.MaximumQueuedMessagesPerSession, Options.MaximumInflightPerClient, Options.QueueHighWaterMark, out var sentTo, out var congested))
                {
                    Metrics.Dropped("queue_full");
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
        }

        matches.Clear();
        return backedUp;
    }

    private static void Deduplicate(List<TopicSubscription<MqttSession>> matches, HashSet<MqttSession> seen)
    {
        // Keep the first entry per session, raised to the session's highest QoS among its matches.
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
                if (matches[i].Subscriber == match.Subscriber && matches[i].MaximumQoS < match.MaximumQoS)
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
            Subscriptions.Remove(filter, session);
        }
    }

    private void ExpireSessions()
    {
        var now = TimeProvider.GetTimestamp();
        foreach (var session in _sessions.Values)
        {
            if (session.Connection is not null || session.ExpirySeconds == uint.MaxValue || !session.IsPersistent)
            {
                continue;
            }

            if (TimeProvider.GetElapsedTime(session.DisconnectedAtTimestamp, now).TotalSeconds < session.ExpirySeconds)
            {
                continue;
            }

            lock (_sessionLock)
            {
                if (session.Connection is null && _sessions.TryGetValue(session.ClientId, out var current) && current == session)
                {
                    RemoveSubscriptions(session);
                    session.Clear();
                    _sessions.TryRemove(session.ClientId, out _);
                }
            }
        }
    }
}

/// <summary>Per-router reusable buffers, so that routing a message allocates nothing.</summary>
internal sealed class RoutingScratch
{
    public List<TopicSubscription<MqttSession>> Matches { get; } = new(16);

    public HashSet<MqttSession> Seen { get; } = [];
}
