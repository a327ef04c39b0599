namespace Fieldline.Core.Telemetry;

/// <summary>One measured value of one metric of one device.</summary>
/// <param name="DeviceId">The device that measured it.</param>
/// <param name="Metric">The metric name (the seed's <c>type</c>, e.g. temperature).</param>
/// <param name="TimestampMs">Unix time in milliseconds.</param>
/// <param name="Value">The value.</param>
/// <param name="Unit">The unit when the device sent one (e.g. °C).</param>
public readonly record struct TelemetryPoint(string DeviceId, string Metric, long TimestampMs, double Value, string? Unit = null);
