namespace Fieldline.Storage.Sqlite;

/// <summary>A point in a series head: not yet in a chunk, durable in telemetry_log under <see cref="Seq"/>.</summary>
internal readonly record struct HeadPoint(long Seq, long TimestampMs, double Value);

/// <summary>Identifies a series by device and metric.</summary>
internal readonly record struct SeriesKey(string DeviceId, string Metric);

/// <summary>
/// One series (device, metric) and its in-memory state. Mutated only by the store's single writer while it
/// also holds the store's head lock; queries read it under that lock.
/// </summary>
internal sealed class TelemetrySeries(long id, string deviceId, string metric, string? unit, long flushedSeq)
{
    public long Id { get; } = id;

    public string DeviceId { get; } = deviceId;

    public string Metric { get; } = metric;

    public string? Unit { get; set; } = unit;

    /// <summary>The newest log seq already sealed into a chunk.</summary>
    public long FlushedSeq { get; set; } = flushedSeq;

    /// <summary>Points newer than <see cref="FlushedSeq"/>, in seq (arrival) order.</summary>
    public List<HeadPoint> Head { get; } = [];

    /// <summary>Server time (Unix ms) when the oldest head point arrived; drives age-based sealing.</summary>
    public long HeadSinceMs { get; set; }

    public bool HasLatest { get; set; }

    public long LatestTimestampMs { get; set; }

    public double LatestValue { get; set; }

    /// <summary>Keeps the point with the greatest timestamp; among equal timestamps the later arrival wins.</summary>
    public void ObserveLatest(long timestampMs, double value)
    {
        if (!HasLatest || timestampMs >= LatestTimestampMs)
        {
            HasLatest = true;
            LatestTimestampMs = timestampMs;
            LatestValue = value;
        }
    }

    public void AddToHead(HeadPoint point, long nowMs)
    {
        if (Head.Count == 0)
        {
            HeadSinceMs = nowMs;
        }

        Head.Add(point);
        ObserveLatest(point.TimestampMs, point.Value);
    }
}
