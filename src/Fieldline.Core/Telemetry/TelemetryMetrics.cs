namespace Fieldline.Core.Telemetry;

/// <summary>Names shared by the telemetry instruments.</summary>
public static class TelemetryMetrics
{
    /// <summary>The System.Diagnostics.Metrics meter of the telemetry path.</summary>
    public const string MeterName = "Fieldline.Telemetry";
}
