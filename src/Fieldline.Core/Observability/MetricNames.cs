namespace Fieldline.Core.Observability;

/// <summary>
/// Meter and instrument names that /metrics exports. The exporter collects every meter whose name starts
/// with <see cref="MeterPrefix"/>; counters get the Prometheus <c>_total</c> suffix, so the counter
/// <see cref="MqttMessagesReceived"/> is scraped as <c>iot_mqtt_messages_received_total</c>.
/// </summary>
public static class MetricNames
{
    public const string MeterPrefix = "Fieldline";

    public const string DevicesMeter = "Fieldline.Devices";
    public const string MqttMeter = "Fieldline.Mqtt";
    public const string TelemetryMeter = "Fieldline.Telemetry";
    public const string TelemetryIngestMeter = "Fieldline.Telemetry.Ingest";
    public const string ShadowsMeter = "Fieldline.Shadows";
    public const string CommandsMeter = "Fieldline.Commands";
    public const string EventsMeter = "Fieldline.Events";

    /// <summary>Gauge of registered devices by status and type.</summary>
    public const string DeviceTotal = "iot_device_total";

    /// <summary>Counter of MQTT PUBLISH packets received by the broker.</summary>
    public const string MqttMessagesReceived = "iot_mqtt_messages_received";

    /// <summary>Counter of MQTT PUBLISH packets delivered to subscribers.</summary>
    public const string MqttMessagesPublished = "iot_mqtt_messages_published";

    /// <summary>Counter of telemetry points accepted from devices.</summary>
    public const string DeviceDataReceived = "iot_device_data_received";

    /// <summary>Counter of shadow updates by <c>writer</c> and <c>outcome</c>.</summary>
    public const string ShadowUpdates = "fieldline.shadow.updates";

    /// <summary>Histogram of the time to apply and store a shadow update, in seconds.</summary>
    public const string ShadowUpdateDuration = "fieldline.shadow.update.duration.seconds";

    /// <summary>Counter of command state changes by the <c>state</c> entered (pending counts creations).</summary>
    public const string CommandStates = "fieldline.command.states";

    /// <summary>Histogram of the time from a command's creation to its outcome, in seconds, by final <c>state</c>.</summary>
    public const string CommandDuration = "fieldline.command.duration.seconds";

    /// <summary>Counter of events published on the event bus by <c>event_type</c>.</summary>
    public const string EventsPublished = "fieldline.events.published";

    /// <summary>Counter of event subscribers ended because they fell too far behind.</summary>
    public const string EventSubscribersLagged = "fieldline.events.subscribers_lagged";

    /// <summary>Bucket boundaries in seconds for operations that take from a fraction of a millisecond to a minute.</summary>
    public static readonly IReadOnlyList<double> LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
}
