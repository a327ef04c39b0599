using System.Buffers;
using Fieldline.Core.Telemetry.Compression;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>Sealing heads into chunks and truncating the log.</summary>
public sealed partial class SqliteTelemetryStore
{
    /// <summary>
    /// Seals heads that are full or older than <see cref="SqliteTelemetryStoreOptions.MaxHeadAge"/> (every
    /// non-empty head when <paramref name="sealAll"/>), then truncates the log. Returns the chunks written.
    /// </summary>
    internal async Task<int> CompactAsync(bool sealAll, CancellationToken cancellationToken)
    {
        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = OpenWriter();
            var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            var maxAgeMs = (long)options.MaxHeadAge.TotalMilliseconds;
            var due = new List<TelemetrySeries>();
            foreach (var series in seriesById.Values)
            {
                if (series.Head.Count > 0 && (sealAll || series.Head.Count >= options.MaxHeadPoints || now - series.HeadSinceMs >= maxAgeMs))
                {
                    due.Add(series);
                }
            }

            Seal(connection, due);
            TruncateLog(connection);
            return due.Count;
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
    private void Seal(SqliteConnection connection, List<TelemetrySeries> due)
    {
        if (due.Count == 0)
        {
            return;
        }

        var sealedSeries = new List<(TelemetrySeries Series, long MaxSeq)>(due.Count);
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

            var sorted = ArrayPool<HeadPoint>.Shared.Rent(options.MaxHeadPoints);
            try
            {
                foreach (var series in due)
                {
                    var head = series.Head;
                    if (head.Count == 0)
                    {
                        continue;
                    }

                    if (sorted.Length < head.Count)
                    {
                        ArrayPool<HeadPoint>.Shared.Return(sorted);
                        sorted = ArrayPool<HeadPoint>.Shared.Rent(head.Count);
                    }

                    // Late points arrive out of order; chunks store (ts, seq) order so equal timestamps keep arrival order.
                    var points = sorted.AsSpan(0, head.Count);
                    head.CopyTo(points);
                    points.Sort(static (a, b) => a.TimestampMs != b.TimestampMs ? a.TimestampMs.CompareTo(b.TimestampMs) : a.Seq.CompareTo(b.Seq));
                    encoder.Reset();
                    foreach (var point in points)
                    {
                        encoder.Append(point.TimestampMs, point.Value);
                    }

                    var maxSeq = head[^1].Seq;
                    chunkSeries.Value = series.Id;
                    chunkStart.Value = points[0].TimestampMs;
                    chunkEnd.Value = points[^1].TimestampMs;
                    chunkMaxSeq.Value = maxSeq;
                    chunkCount.Value = points.Length;
                    chunkData.Value = encoder.ToArray();
                    insertChunk.ExecuteNonQuery();

                    flushedSeq.Value = maxSeq;
                    flushedId.Value = series.Id;
                    updateFlushed.ExecuteNonQuery();
                    sealedSeries.Add((series, maxSeq));
                    sealedPoints += points.Length;
                }
            }
            finally
            {
                ArrayPool<HeadPoint>.Shared.Return(sorted);
            }

            transaction.Commit();
        }

        lock (headLock)
        {
            foreach (var (series, maxSeq) in sealedSeries)
            {
                series.FlushedSeq = maxSeq;
                series.Head.Clear();
            }
        }

        logger.Sealed(sealedSeries.Count, sealedPoints);
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
