using System.Buffers;
using System.Runtime.InteropServices;
using Fieldline.Core.Telemetry;
using Fieldline.Core.Telemetry.Compression;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>Latest, raw and aggregate queries.</summary>
public sealed partial class SqliteTelemetryStore
{
    /// <inheritdoc />
    public Task<IReadOnlyList<LatestValue>> GetLatestAsync(string deviceId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        ObjectDisposedException.ThrowIf(disposed, this);
        var result = new List<LatestValue>();
        lock (headLock)
        {
            if (seriesByDevice.TryGetValue(deviceId, out var list))
            {
                foreach (var series in list)
                {
                    if (series.HasLatest && series.LatestTimestampMs >= retentionCutoffMs)
                    {
                        result.Add(new LatestValue(series.Metric, series.LatestTimestampMs, series.LatestValue, series.Unit));
                    }
                }
            }
        }

        result.Sort(static (a, b) => string.CompareOrdinal(a.Metric, b.Metric));
        return Task.FromResult<IReadOnlyList<LatestValue>>(result);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The cursor is not one this store returned.</exception>
    public Task<RawPointPage> QueryRawAsync(string deviceId, string metric, long fromMs, long toMs, int limit, string? cursor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        ArgumentNullException.ThrowIfNull(metric);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var after = cursor is null ? (RawCursor?)null : RawCursor.Decode(cursor);
        return Task.FromResult(QueryRaw(new SeriesKey(deviceId, metric), fromMs, toMs, limit, after, cancellationToken));
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<AggregateBucket>> QueryAggregatesAsync(string deviceId, string metric, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        ArgumentNullException.ThrowIfNull(metric);
        ArgumentOutOfRangeException.ThrowIfLessThan(intervalMs, 1);
        return Task.FromResult<IReadOnlyList<AggregateBucket>>(QueryAggregates(new SeriesKey(deviceId, metric), fromMs, toMs, intervalMs, cancellationToken));
    }

    private RawPointPage QueryRaw(SeriesKey key, long fromMs, long toMs, int limit, RawCursor? after, CancellationToken cancellationToken)
    {
        // Design note: points are ordered by (timestamp, seq) so that equal timestamps have one stable order
        // across pages even while heads are sealed in between: a chunk holds a contiguous seq range sorted by
        // (ts, seq), so ordering by (ts, chunk max_seq, position in chunk) for chunk points and (ts, seq) for
        // head points (all newer than any visible chunk) is exactly (ts, seq). Chunks are read by start time and
        // reading stops once no further chunk can contribute to the first `skip + limit + 1` points.
        var lowest = fromMs;
        var skip = 0;
        if (after is { } position && position.TimestampMs >= fromMs)
        {
            lowest = position.TimestampMs;
            skip = position.SeenAtTimestamp;
        }

        var points = new List<OrderedPoint>();
        if (!TrySnapshot(key, ref lowest, toMs, points, out var seriesId, out var flushedSeq))
        {
            return new RawPointPage([], null);
        }

        if (lowest > (after?.TimestampMs ?? long.MinValue))
        {
            skip = 0; // the cursor's timestamp is now below the retention cutoff
        }

        var need = skip + (long)limit + 1;
        var bound = long.MaxValue; // only points with ts <= bound can still be among the first `need`
        using (var connection = OpenReader())
        using (var command = ChunkQuery(connection, seriesId, lowest, toMs, flushedSeq, "ORDER BY start_ts"))
        using (var reader = command.ExecuteReader())
        {
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                while (reader.Read())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (reader.GetInt64(0) > bound)
                    {
                        break;
                    }

                    var maxSeq = reader.GetInt64(1);
                    var decoder = new ChunkDecoder(ReadBlob(reader, 2, ref buffer));
                    for (var index = 0; decoder.TryNext(out var ts, out var value); index++)
                    {
                        if (ts >= lowest && ts < toMs && ts <= bound)
                        {
                            points.Add(new OrderedPoint(ts, maxSeq, index, value));
                        }
                    }

                    if (points.Count >= need * 2)
                    {
                        bound = Trim(points, need);
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        var ordered = CollectionsMarshal.AsSpan(points);
        ordered.Sort(default(OrderedPointComparer));
        var start = (int)Math.Min(skip, ordered.Length);
        var page = ordered[start..Math.Min(ordered.Length, start + limit)];
        var result = new StoredPoint[page.Length];
        for (var i = 0; i < page.Length; i++)
        {
            result[i] = new StoredPoint(page[i].TimestampMs, page[i].Value);
        }

        string? next = null;
        if (start + limit < ordered.Length)
        {
            var lastTs = page[^1].TimestampMs;
            var seen = 0;
            for (var i = start + page.Length - 1; i >= 0 && ordered[i].TimestampMs == lastTs; i--)
            {
                seen++;
            }

            next = new RawCursor(lastTs, seen).Encode();
        }

        return new RawPointPage(result, next);
    }

    // Keeps the first `need` points in order plus any ties with the last of them; returns that last timestamp.
    private static long Trim(List<OrderedPoint> points, long need)
    {
        var span = CollectionsMarshal.AsSpan(points);
        span.Sort(default(OrderedPointComparer));
        var bound = span[(int)need - 1].TimestampMs;
        var keep = (int)need;
        while (keep < span.Length && span[keep].TimestampMs == bound)
        {
            keep++;
        }

        points.RemoveRange(keep, points.Count - keep);
        return bound;
    }

    private List<AggregateBucket> QueryAggregates(SeriesKey key, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken)
    {
        var lowest = fromMs;
        var headPoints = new List<OrderedPoint>();
        if (!TrySnapshot(key, ref lowest, toMs, headPoints, out var seriesId, out var flushedSeq))
        {
            return [];
        }

        var buckets = new Dictionary<long, BucketStatistics>();
        foreach (var point in headPoints)
        {
            AddToBucket(buckets, point.TimestampMs, point.Value, intervalMs);
        }

        using (var connection = OpenReader())
        using (var command = ChunkQuery(connection, seriesId, lowest, toMs, flushedSeq, string.Empty))
        using (var reader = command.ExecuteReader())
        {
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                while (reader.Read())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var decoder = new ChunkDecoder(ReadBlob(reader, 2, ref buffer));
                    while (decoder.TryNext(out var ts, out var value))
                    {
                        if (ts >= lowest && ts < toMs)
                        {
                            AddToBucket(buckets, ts, value, intervalMs);
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        var result = new List<AggregateBucket>(buckets.Count);
        foreach (var (start, stats) in buckets)
        {
            result.Add(new AggregateBucket(start, stats.Count, stats.Mean, stats.Min, stats.Max, stats.PopulationStdDev));
        }

        result.Sort(static (a, b) => a.StartMs.CompareTo(b.StartMs));
        return result;
    }

    private static void AddToBucket(Dictionary<long, BucketStatistics> buckets, long timestampMs, double value, long intervalMs)
    {
        // Floor division so that buckets before 1970 align to the epoch too.
        var offset = timestampMs % intervalMs;
        var start = timestampMs - (offset < 0 ? offset + intervalMs : offset);
        CollectionsMarshal.GetValueRefOrAddDefault(buckets, start, out _).Add(value);
    }

    /// <summary>
    /// Copies the head points in [<paramref name="lowest"/>, <paramref name="toMs"/>) and the series' flushed seq
    /// under the head lock; raises <paramref name="lowest"/> to the retention cutoff. False when there is no such series.
    /// </summary>
    private bool TrySnapshot(SeriesKey key, ref long lowest, long toMs, List<OrderedPoint> points, out long seriesId, out long flushedSeq)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        lock (headLock)
        {
            if (!seriesByKey.TryGetValue(key, out var series))
            {
                seriesId = flushedSeq = 0;
                return false;
            }

            seriesId = series.Id;
            flushedSeq = series.FlushedSeq;
            lowest = Math.Max(lowest, retentionCutoffMs);
            foreach (var point in series.Head)
            {
                if (point.TimestampMs >= lowest && point.TimestampMs < toMs)
                {
                    points.Add(new OrderedPoint(point.TimestampMs, point.Seq, 0, point.Value));
                }
            }
        }

        return lowest < toMs;
    }

    private static SqliteCommand ChunkQuery(SqliteConnection connection, long seriesId, long lowest, long toMs, long flushedSeq, string orderBy)
    {
        var command = connection.CreateCommand();
        command.CommandText = $"SELECT start_ts, max_seq, data FROM telemetry_chunk WHERE series = $series AND end_ts >= $from AND start_ts < $to AND max_seq <= $flushed {orderBy}";
        command.Parameters.AddWithValue("$series", seriesId);
        command.Parameters.AddWithValue("$from", lowest);
        command.Parameters.AddWithValue("$to", toMs);
        command.Parameters.AddWithValue("$flushed", flushedSeq);
        return command;
    }

    private static ReadOnlySpan<byte> ReadBlob(SqliteDataReader reader, int ordinal, ref byte[] buffer)
    {
        var length = (int)reader.GetBytes(ordinal, 0, null, 0, 0);
        if (buffer.Length < length)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = ArrayPool<byte>.Shared.Rent(length);
        }

        reader.GetBytes(ordinal, 0, buffer, 0, length);
        return buffer.AsSpan(0, length);
    }

    /// <summary>A point with its position in (timestamp, seq) order; see QueryRaw's design note.</summary>
    private readonly record struct OrderedPoint(long TimestampMs, long Group, int Index, double Value);

    private readonly struct OrderedPointComparer : IComparer<OrderedPoint>
    {
        public int Compare(OrderedPoint x, OrderedPoint y)
        {
            var byTime = x.TimestampMs.CompareTo(y.TimestampMs);
            if (byTime != 0)
            {
                return byTime;
            }

            var byGroup = x.Group.CompareTo(y.Group);
            return byGroup != 0 ? byGroup : x.Index.CompareTo(y.Index);
        }
    }
}
