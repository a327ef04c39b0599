namespace Fieldline.Core.Telemetry;

/// <summary>The latest value of one metric of a device.</summary>
public sealed record LatestValue(string Metric, long TimestampMs, double Value, string? Unit);

/// <summary>A raw point as returned by queries.</summary>
public readonly record struct StoredPoint(long TimestampMs, double Value);

/// <summary>A page of raw points in ascending time order; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record RawPointPage(IReadOnlyList<StoredPoint> Points, string? NextCursor);

/// <summary>Statistics of the points in one time bucket [StartMs, StartMs + interval).</summary>
public sealed record AggregateBucket(long StartMs, long Count, double Mean, double Min, double Max, double StdDev);

/// <summary>
/// The time-series store. Implementations: SQLite (embedded default), PostgreSQL later.
/// </summary>
public interface ITelemetryStore : IAsyncDisposable
{
    /// <summary>Opens or creates the store and recovers anything logged but not yet compacted.</summary>
    Task OpenAsync(CancellationToken cancellationToken);

    /// <summary>Appends a batch; when the returned task completes the points are durable (survive kill -9).</summary>
    Task AppendAsync(ReadOnlyMemory<TelemetryPoint> points, CancellationToken cancellationToken);

    /// <summary>The latest value of each metric of a device.</summary>
    Task<IReadOnlyList<LatestValue>> GetLatestAsync(string deviceId, CancellationToken cancellationToken);

    /// <summary>Raw points with fromMs &lt;= ts &lt; toMs, ascending, at most <paramref name="limit"/>, continuing after <paramref name="cursor"/>.</summary>
    Task<RawPointPage> QueryRawAsync(string deviceId, string metric, long fromMs, long toMs, int limit, string? cursor, CancellationToken cancellationToken);

    /// <summary>Aggregates over buckets of <paramref name="intervalMs"/> aligned to the Unix epoch; empty buckets omitted.</summary>
    Task<IReadOnlyList<AggregateBucket>> QueryAggregatesAsync(string deviceId, string metric, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken);

    /// <summary>Deletes points older than <paramref name="cutoffMs"/>; returns how many were removed (approximate for chunked data).</summary>
    Task<long> DeleteOlderThanAsync(long cutoffMs, CancellationToken cancellationToken);

    /// <summary>Deletes all data of a device.</summary>
    Task DeleteDeviceAsync(string deviceId, CancellationToken cancellationToken);

    /// <summary>Bytes on disk, for /metrics and the system page.</summary>
    long SizeBytes { get; }
}
