using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Fieldline.Mqtt.Server;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>
/// Sums what one broker's counters record (only that broker's meter, so tests running in parallel do not mix),
/// keyed by instrument name and tags.
/// </summary>
public sealed class BrokerCounters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _values = new(StringComparer.Ordinal);

    public BrokerCounters(MqttBroker broker)
    {
        var meter = broker.Metrics.Meter;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name + string.Concat(tags.ToArray().OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $",{t.Key}={t.Value}"));
            _values.AddOrUpdate(key, value, (_, sum) => sum + value);
        });
        _listener.Start();
    }

    /// <summary>The sum recorded by <paramref name="instrument"/> with the single tag <paramref name="tag"/>=<paramref name="value"/>.</summary>
    public long Get(string instrument, string tag, string value) => _values.GetValueOrDefault($"{instrument},{tag}={value}");

    /// <summary>Refusals of one limit (<c>fieldline.mqtt.limits_reached{limit=...}</c>).</summary>
    public long LimitsReached(string limit) => Get("fieldline.mqtt.limits_reached", "limit", limit);

    public override string ToString() => string.Join(", ", _values.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}: {p.Value}"));

    public void Dispose() => _listener.Dispose();
}
