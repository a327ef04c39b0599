using Microsoft.Extensions.Logging;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>Source-generated log messages of <see cref="SqliteMqttStateStore"/>.</summary>
internal static partial class SqliteMqttStateStoreLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Opened MQTT state store {Path}: {Deliveries} stored deliveries in {ElapsedMs:F0} ms")]
    public static partial void Opened(this ILogger logger, string path, int deliveries, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded MQTT state: {Sessions} sessions, {Deliveries} deliveries, {Retained} retained messages in {ElapsedMs:F0} ms")]
    public static partial void Loaded(this ILogger logger, int sessions, int deliveries, int retained, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {Rows} stored subscriptions, deliveries or QoS 2 packet ids that belong to no stored session")]
    public static partial void OrphansSkipped(this ILogger logger, int rows);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing {Changes} MQTT state changes failed; they are not durable and whoever waits for them sees the error. Later changes are written.")]
    public static partial void CommitFailed(this ILogger logger, Exception exception, int changes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The final checkpoint of the MQTT state store failed; the WAL is folded in at the next open")]
    public static partial void CheckpointFailed(this ILogger logger, Exception exception);
}
