namespace Fieldline.Core.Telemetry;

/// <summary>How long telemetry is kept; see <see cref="TelemetryRetentionService"/>.</summary>
public sealed class TelemetryRetentionOptions
{
    /// <summary>Points older than this are deleted. <see cref="TimeSpan.Zero"/> (the default) keeps everything.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.Zero;

    /// <summary>How often retention runs; the first run is at startup.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);
}
