using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>Retention and device deletion.</summary>
public sealed partial class SqliteTelemetryStore
{
    /// <inheritdoc />
    /// <remarks>
    /// Chunks entirely older than the cutoff are deleted; chunks straddling it stay until a later cutoff passes
    /// them, and the cutoff (persisted) hides their older points from every query meanwhile. The count covers
    /// deleted chunks and head points, not the hidden points of straddling chunks.
    /// </remarks>
    public async Task<long> DeleteOlderThanAsync(long cutoffMs, CancellationToken cancellationToken)
    {
        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var removed = DeleteOlderThan(OpenWriter(), cutoffMs);
            return removed;
        }
        finally
        {
            writeGate.Release();
        }
    }

    /// <inheritdoc />
    public async Task DeleteDeviceAsync(string deviceId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            DeleteDevice(OpenWriter(), deviceId);
        }
        finally
        {
            writeGate.Release();
        }
    }

    private long DeleteOlderThan(SqliteConnection connection, long cutoffMs)
    {
        if (cutoffMs <= retentionCutoffMs)
        {
            return 0;
        }

        long removed;
        using (var transaction = connection.BeginTransaction())
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$cutoff", cutoffMs);
            command.Parameters.AddWithValue("$key", TelemetrySchema.RetentionCutoffKey);
            command.CommandText = "SELECT COALESCE(SUM(count), 0) FROM telemetry_chunk WHERE end_ts < $cutoff";
            removed = (long)command.ExecuteScalar()!;
            command.CommandText = """
                DELETE FROM telemetry_chunk WHERE end_ts < $cutoff;
                INSERT INTO telemetry_meta(key, value) VALUES ($key, $cutoff) ON CONFLICT(key) DO UPDATE SET value = excluded.value;
                """;
            command.ExecuteNonQuery();
            transaction.Commit();
        }

        lock (headLock)
        {
            retentionCutoffMs = cutoffMs;
            foreach (var series in seriesById.Values)
            {
                // Their log rows stay until the head is sealed; replay skips them by the persisted cutoff.
                removed += series.Head.RemoveAll(p => p.TimestampMs < cutoffMs);
                if (series.HasLatest && series.LatestTimestampMs < cutoffMs)
                {
                    series.HasLatest = false;
                }
            }
        }

        return removed;
    }

    private void DeleteDevice(SqliteConnection connection, string deviceId)
    {
        using (var transaction = connection.BeginTransaction())
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$device", deviceId);
            command.CommandText = """
                DELETE FROM telemetry_chunk WHERE series IN (SELECT id FROM series WHERE device_id = $device);
                DELETE FROM telemetry_log WHERE series IN (SELECT id FROM series WHERE device_id = $device);
                DELETE FROM series WHERE device_id = $device;
                """;
            command.ExecuteNonQuery();
            transaction.Commit();
        }

        var count = 0;
        lock (headLock)
        {
            if (seriesByDevice.Remove(deviceId, out var list))
            {
                foreach (var series in list)
                {
                    seriesByKey.Remove(new SeriesKey(series.DeviceId, series.Metric));
                    seriesById.Remove(series.Id);
                }

                count = list.Count;
            }
        }

        logger.DeviceDeleted(deviceId, count);
    }
}
