using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Fieldline.Core.Observability;

namespace Fieldline.Core.Events;

/// <summary>Which events a subscriber wants: types (all when empty) and one device (all when null).</summary>
public sealed record EventFilter(IReadOnlySet<string> Types, string? DeviceId)
{
    public static EventFilter Everything { get; } = new(new HashSet<string>(), null);

    public bool Matches(PlatformEvent e) => (Types.Count == 0 || Types.Contains(e.EventType)) && (DeviceId is null || DeviceId == e.DeviceId);
}

/// <summary>
/// The platform's internal event bus, not tied to any transport: parts of the core publish, and subscribers
/// (the SSE endpoint, later webhooks and MQTT) read.
/// </summary>
/// <remarks>
/// Design note. Publishing never waits: each subscriber has a bounded queue, and a subscriber that falls
/// <see cref="SubscriberQueue"/> events behind is ended rather than slowing the publishers or silently skipping
/// events. It resumes from the last event it saw: the bus keeps the most recent <see cref="Retention"/> events
/// (in memory, for this process's life), and a subscription given an event id first replays what came after it.
/// </remarks>
public sealed class EventBus
{
    /// <summary>How many recent events are kept for resumption.</summary>
    public const int Retention = 10_000;

    /// <summary>How far a subscriber may fall behind before it is ended.</summary>
    public const int SubscriberQueue = 1_000;

    private readonly TimeProvider _timeProvider;
    private readonly Lock _gate = new();
    private readonly PlatformEvent?[] _recent = new PlatformEvent?[Retention];
    private readonly List<Subscription> _subscriptions = [];
    private readonly Counter<long> _published;
    private readonly Counter<long> _lagged;
    private long _sequence;

    public EventBus(TimeProvider timeProvider, IMeterFactory? meterFactory = null)
    {
        _timeProvider = timeProvider;
        var meter = meterFactory?.Create(MetricNames.EventsMeter) ?? new Meter(MetricNames.EventsMeter);
        _published = meter.CreateCounter<long>(MetricNames.EventsPublished, description: "Events published on the event bus by event_type");
        _lagged = meter.CreateCounter<long>(MetricNames.EventSubscribersLagged, description: "Event subscribers (SSE streams, webhooks, MQTT) ended because they fell too far behind");
    }

    /// <summary>Publishes an event to every subscriber whose filter it matches.</summary>
    public PlatformEvent Publish(string eventType, string source, string? deviceId, JsonObject payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        lock (_gate)
        {
            var e = new PlatformEvent(++_sequence, eventType, source, _timeProvider.GetUtcNow(), deviceId, payload);
            _recent[e.Sequence % Retention] = e;
            foreach (var subscription in _subscriptions)
            {
                if (subscription.Filter.Matches(e) && !subscription.Queue.Writer.TryWrite(e))
                {
                    // Too far behind: end it; it can resume from the last event it received.
                    if (subscription.Queue.Writer.TryComplete(new EventSubscriberLaggedException()))
                    {
                        _lagged.Add(1);
                    }
                }
            }

            _published.Add(1, new KeyValuePair<string, object?>("event_type", eventType));
            return e;
        }
    }

    /// <summary>
    /// The events matching <paramref name="filter"/>: first those retained after <paramref name="afterEventId"/>
    /// (when given), then new ones as they come. Throws <see cref="EventSubscriberLaggedException"/> when the
    /// reader falls too far behind.
    /// </summary>
    public async IAsyncEnumerable<PlatformEvent> SubscribeAsync(EventFilter filter, long? afterEventId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var subscription = new Subscription(filter, Channel.CreateBounded<PlatformEvent>(new BoundedChannelOptions(SubscriberQueue)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        }));
        IReadOnlyList<PlatformEvent> replay;
        lock (_gate)
        {
            replay = afterEventId is { } after ? Retained(filter, after) : [];
            _subscriptions.Add(subscription);
        }

        try
        {
            foreach (var e in replay)
            {
                yield return e;
            }

            await foreach (var e in subscription.Queue.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return e;
            }
        }
        finally
        {
            lock (_gate)
            {
                _subscriptions.Remove(subscription);
            }
        }
    }

    /// <summary>The retained events after <paramref name="afterEventId"/> that match <paramref name="filter"/>, oldest first.</summary>
    public IReadOnlyList<PlatformEvent> Retained(EventFilter filter, long afterEventId)
    {
        ArgumentNullException.ThrowIfNull(filter);
        List<PlatformEvent> retained = [];
        lock (_gate)
        {
            for (var sequence = Math.Max(afterEventId + 1, _sequence - Retention + 1); sequence <= _sequence; sequence++)
            {
                if (_recent[sequence % Retention] is { } e && e.Sequence == sequence && filter.Matches(e))
                {
                    retained.Add(e);
                }
            }
        }

        return retained;
    }

    private sealed record Subscription(EventFilter Filter, Channel<PlatformEvent> Queue);
}

/// <summary>A subscriber fell too far behind and was ended; it may resume from the last event it received.</summary>
public sealed class EventSubscriberLaggedException : Exception
{
    public EventSubscriberLaggedException()
        : base($"The subscriber fell more than {EventBus.SubscriberQueue} events behind and was ended; resume from the last event received.")
    {
    }

    public EventSubscriberLaggedException(string message)
        : base(message)
    {
    }

    public EventSubscriberLaggedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
