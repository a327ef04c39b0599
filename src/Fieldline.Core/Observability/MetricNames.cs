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

    /// <summary>Gauge of registered devices by status and type.</summary>
    public const string DeviceTotal = "iot_device_total";

    /// <summary>Counter of MQTT PUBLISH packets received by the broker.</summary>
    public const string MqttMessagesReceived = "iot_mqtt_messages_received";

    /// <summary>Counter of MQTT PUBLISH packets delivered to subscribers.</summary>
    public const string MqttMessagesPublished = "iot_mqtt_messages_published";

    /// <summary>Counter of telemetry points accepted from devices.</summary>
    public const string DeviceDataReceived = "iot_device_data_received";
}
