using Microsoft.Extensions.Logging;

namespace Fieldline.Storage.Sqlite;

/// <summary>Source-generated log messages of <see cref="SqliteTelemetryStore"/>.</summary>
internal static partial class SqliteTelemetryStoreLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Opened telemetry store {Path}: {Series} series, {Replayed} log points replayed into heads in {ElapsedMs:F0} ms")]
    public static partial void Opened(this ILogger logger, string path, int series, long replayed, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sealed {Chunks} chunks holding {Points} points")]
    public static partial void Sealed(this ILogger logger, int chunks, long points);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Truncated the telemetry log below seq {Seq}")]
    public static partial void LogTruncated(this ILogger logger, long seq);

    [LoggerMessage(Level = LogLevel.Error, Message = "Background compaction failed; it is retried at the next interval")]
    public static partial void CompactionFailed(this ILogger logger, Exception exception);


    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted the telemetry of device {DeviceId} ({Series} series)")]
    public static partial void DeviceDeleted(this ILogger logger, string deviceId, int series);
}
