using System.Diagnostics.Metrics;
using Fieldline.Core;
using Fieldline.Core.Devices;
using Fieldline.Core.Observability;

namespace Fieldline.Observability;

/// <summary>
/// The <c>iot_device_total{status,type}</c> gauge. Counting is a registry query, so the counts are cached
/// for <see cref="MaximumAge"/> and refreshed by the /metrics endpoint before it scrapes.
/// Every (status, type) pair is reported, zero included, so that series do not vanish.
/// </summary>
internal sealed class DeviceMetrics : IDisposable
{
    public static readonly TimeSpan MaximumAge = TimeSpan.FromSeconds(5);

    private readonly Meter _meter;
    private readonly IDeviceRegistry _registry;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private IReadOnlyDictionary<(DeviceStatus Status, DeviceType Type), long> _counts = new Dictionary<(DeviceStatus, DeviceType), long>();
    private DateTimeOffset _countedAt = DateTimeOffset.MinValue;

    public DeviceMetrics(IMeterFactory meterFactory, IDeviceRegistry registry, TimeProvider timeProvider)
    {
        _registry = registry;
        _timeProvider = timeProvider;
        _meter = meterFactory.Create(MetricNames.DevicesMeter);
        _meter.CreateObservableGauge(MetricNames.DeviceTotal, Observe, description: "Registered devices by status and type.");
    }

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        if (_timeProvider.GetUtcNow() - _countedAt < MaximumAge)
        {
            return;
        }

        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (_timeProvider.GetUtcNow() - _countedAt >= MaximumAge)
            {
                _counts = await _registry.CountAsync(cancellationToken);
                _countedAt = _timeProvider.GetUtcNow();
            }
        }
        finally
        {
            _refresh.Release();
        }
    }

    public void Dispose()
    {
        _meter.Dispose();
        _refresh.Dispose();
    }

    private IEnumerable<Measurement<long>> Observe()
    {
        var counts = _counts;
        foreach (var status in Enum.GetValues<DeviceStatus>())
        {
            foreach (var type in Enum.GetValues<DeviceType>())
            {
                yield return new Measurement<long>(
                    counts.GetValueOrDefault((status, type)),
                    new KeyValuePair<string, object?>("status", WireNames.Name(status)),
                    new KeyValuePair<string, object?>("type", WireNames.Name(type)));
            }
        }
    }
}
