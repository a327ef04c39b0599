using System.Buffers;
using Fieldline.Core.Telemetry.Compression;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>Sealing heads into chunks and truncating the log.</summary>
public sealed partial class SqliteTelemetryStore
{
    /// <summary>
    /// Seals the full runs of every head, and the whole head of those older than
    /// <see cref="SqliteTelemetryStoreOptions.MaxHeadAge"/> (of every head when <paramref name="sealAll"/>),
    /// then truncates the log.
    /// </summary>
    internal async Task CompactAsync(bool sealAll, CancellationToken cancellationToken)
    {
        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = OpenWriter();
            var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            var maxAgeMs = (long)options.MaxHeadAge.TotalMilliseconds;
            var whole = new List<TelemetrySeries>();
            var full = new List<TelemetrySeries>();
            foreach (var series in seriesById.Values)
            {
                if (series.Head.Count > 0 && (sealAll || now - series.HeadSinceMs >= maxAgeMs))
                {
                    whole.Add(series);
                }
                else if (series.Head.Count >= options.MaxHeadPoints)
                {
                    full.Add(series);
                }
            }

            Seal(connection, full, fullRunsOnly: true);
            Seal(connection, whole, fullRunsOnly: false);
            TruncateLog(connection);
        }
        finally
        {
            writeGate.Release();
        }
    }

    private async Task RunCompactorAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.CompactionInterval, timeProvider, stop).ConfigureAwait(false);
                await CompactAsync(sealAll: false, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is SqliteException or InvalidOperationException or IOException)
            {
                logger.CompactionFailed(ex);
            }
        }
    }

    // Caller holds the write gate, so no append changes a head while it is encoded.
    // A head is cut in arrival (seq) order into runs of MaxHeadPoints, and each run becomes one chunk sorted by
    // (ts, seq): every chunk then holds a contiguous seq range, which the raw query's ordering relies on.
    // With fullRunsOnly a trailing partial run stays in the head.
    private void Seal(SqliteConnection connection, IReadOnlyCollection<TelemetrySeries> due, bool fullRunsOnly)
    {
        if (due.Count == 0)
        {
            return;
        }

        var sealedSeries = new List<(TelemetrySeries Series, int Points, long MaxSeq)>(due.Count);
        var chunks = 0;
        long sealedPoints = 0;
        using var encoder = new ChunkEncoder();
        using (var transaction = connection.BeginTransaction())
        {
            using var insertChunk = connection.CreateCommand();
            insertChunk.Transaction = transaction;
            insertChunk.CommandText = "INSERT INTO telemetry_chunk(series, start_ts, end_ts, max_seq, count, data) VALUES ($series, $start, $end, $maxSeq, $count, $data)";
            var chunkSeries = insertChunk.Parameters.Add("$series", SqliteType.Integer);
            var chunkStart = insertChunk.Parameters.Add("$start", SqliteType.Integer);
            var chunkEnd = insertChunk.Parameters.Add("$end", SqliteType.Integer);
            var chunkMaxSeq = insertChunk.Parameters.Add("$maxSeq", SqliteType.Integer);
            var chunkCount = insertChunk.Parameters.Add("$count", SqliteType.Integer);
            var chunkData = insertChunk.Parameters.Add("$data", SqliteType.Blob);

            using var updateFlushed = connection.CreateCommand();
            updateFlushed.Transaction = transaction;
            updateFlushed.CommandText = "UPDATE series SET flushed_seq = $seq WHERE id = $id";
            var flushedSeq = updateFlushed.Parameters.Add("$seq", SqliteType.Integer);
            var flushedId = updateFlushed.Parameters.Add("$id", SqliteType.Integer);

            var run = ArrayPool<HeadPoint>.Shared.Rent(options.MaxHeadPoints);
            try
            {
                foreach (var series in due)
                {
                    var head = series.Head;
                    var sealable = fullRunsOnly ? head.Count - (head.Count % options.MaxHeadPoints) : head.Count;
                    if (sealable == 0)
                    {
                        continue;
                    }

                    for (var offset = 0; offset < sealable; offset += options.MaxHeadPoints)
                    {
                        var points = run.AsSpan(0, Math.Min(options.MaxHeadPoints, sealable - offset));
                        head.CopyTo(offset, run, 0, points.Length);
                        var maxSeq = points[^1].Seq;

                        // Late points arrive out of order; equal timestamps keep arrival (seq) order.
                        points.Sort(static (a, b) => a.TimestampMs != b.TimestampMs ? a.TimestampMs.CompareTo(b.TimestampMs) : a.Seq.CompareTo(b.Seq));
                        encoder.Reset();
                        foreach (var point in points)
                        {
                            encoder.Append(point.TimestampMs, point.Value);
                        }

                        chunkSeries.Value = series.Id;
                        chunkStart.Value = points[0].TimestampMs;
                        chunkEnd.Value = points[^1].TimestampMs;
                        chunkMaxSeq.Value = maxSeq;
                        chunkCount.Value = points.Length;
                        chunkData.Value = encoder.ToArray();
                        insertChunk.ExecuteNonQuery();
                        chunks++;
                    }

                    var lastSeq = head[sealable - 1].Seq;
                    flushedSeq.Value = lastSeq;
                    flushedId.Value = series.Id;
                    updateFlushed.ExecuteNonQuery();
                    sealedSeries.Add((series, sealable, lastSeq));
                    sealedPoints += sealable;
                }
            }
            finally
            {
                ArrayPool<HeadPoint>.Shared.Return(run);
            }

            transaction.Commit();
        }

        var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        lock (headLock)
        {
            foreach (var (series, points, maxSeq) in sealedSeries)
            {
                series.FlushedSeq = maxSeq;
                series.Head.RemoveRange(0, points);
                if (series.Head.Count > 0)
                {
                    // The remainder arrived with the latest appends.
                    series.HeadSinceMs = now;
                }
            }
        }

        logger.Sealed(chunks, sealedPoints);
    }

    // Log rows below the oldest point still in a head are in chunks (or deleted) and no longer needed for recovery.
    private void TruncateLog(SqliteConnection connection)
    {
        var oldestUnsealed = nextSeq;
        foreach (var series in seriesById.Values)
        {
            if (series.Head.Count > 0)
            {
                oldestUnsealed = Math.Min(oldestUnsealed, series.Head[0].Seq);
            }
        }

        if (oldestUnsealed <= logTruncatedBelow)
        {
            return;
        }

        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM telemetry_log WHERE seq < $seq";
        command.Parameters.AddWithValue("$seq", oldestUnsealed);
        command.ExecuteNonQuery();
        logTruncatedBelow = oldestUnsealed;
        logger.LogTruncated(oldestUnsealed);
    }
}
