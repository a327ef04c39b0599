using System.Globalization;
using Fieldline.Core.Telemetry;

namespace Fieldline.Tests.Infrastructure;

/// <summary>A test double of the telemetry store: a list under a lock; cursors are offsets into the query result.</summary>
internal sealed class InMemoryTelemetryStore : ITelemetryStore
{
    private readonly List<TelemetryPoint> _points = [];
    private readonly Lock _lock = new();

    public bool IsOpen { get; private set; }

    public List<string> DeletedDevices { get; } = [];

    public long SizeBytes => 0;

    public Task OpenAsync(CancellationToken cancellationToken)
    {
        IsOpen = true;
        return Task.CompletedTask;
    }

    public Task AppendAsync(ReadOnlyMemory<TelemetryPoint> points, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _points.AddRange(points.Span);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<LatestValue>> GetLatestAsync(string deviceId, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<LatestValue> latest = [.. _points.Where(p => p.DeviceId == deviceId)
                .GroupBy(p => p.Metric)
                .Select(g => g.MaxBy(p => p.TimestampMs))
                .Select(p => new LatestValue(p.Metric, p.TimestampMs, p.Value, p.Unit))
                .OrderBy(v => v.Metric, StringComparer.Ordinal)];
            return Task.FromResult(latest);
        }
    }

    public Task<RawPointPage> QueryRawAsync(string deviceId, string metric, long fromMs, long toMs, int limit, string? cursor, CancellationToken cancellationToken)
    {
        var offset = cursor is null ? 0 : int.Parse(cursor, CultureInfo.InvariantCulture);
        lock (_lock)
        {
            var matching = Select(deviceId, metric, fromMs, toMs).ToList();
            var page = matching.Skip(offset).Take(limit).Select(p => new StoredPoint(p.TimestampMs, p.Value)).ToList();
            var next = offset + page.Count < matching.Count ? (offset + page.Count).ToString(CultureInfo.InvariantCulture) : null;
            return Task.FromResult(new RawPointPage(page, next));
        }
    }

    public Task<IReadOnlyList<AggregateBucket>> QueryAggregatesAsync(string deviceId, string metric, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<AggregateBucket> buckets = [.. Select(deviceId, metric, fromMs, toMs)
                .GroupBy(p => p.TimestampMs - (p.TimestampMs % intervalMs))
                .Select(g =>
                {
                    var values = g.Select(p => p.Value).ToList();
                    var mean = values.Average();
                    var stddev = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count);
                    return new AggregateBucket(g.Key, values.Count, mean, values.Min(), values.Max(), stddev);
                })];
            return Task.FromResult(buckets);
        }
    }

    public Task<long> DeleteOlderThanAsync(long cutoffMs, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult((long)_points.RemoveAll(p => p.TimestampMs < cutoffMs));
        }
    }

    public Task DeleteDeviceAsync(string deviceId, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _points.RemoveAll(p => p.DeviceId == deviceId);
            DeletedDevices.Add(deviceId);
        }

        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private IEnumerable<TelemetryPoint> Select(string deviceId, string metric, long fromMs, long toMs) =>
        _points.Where(p => p.DeviceId == deviceId && p.Metric == metric && p.TimestampMs >= fromMs && p.TimestampMs < toMs)
            .OrderBy(p => p.TimestampMs);
}
