namespace Fieldline.Core.Telemetry;

/// <summary>Limits applied by <see cref="TelemetryPayloadParser"/>. The payload byte size is checked by the caller.</summary>
public sealed class TelemetryPayloadParserOptions
{
    /// <summary>The most points one payload may carry; more makes the whole payload invalid.</summary>
    public int MaxPointsPerPayload { get; set; } = 10_000;

    /// <summary>The deepest JSON nesting accepted. The accepted forms need 3 (array, object, values).</summary>
    public int MaxDepth { get; set; } = 8;

    /// <summary>How far ahead of server time a timestamp may be before it is rejected as a device clock error.</summary>
    public TimeSpan MaxFutureSkew { get; set; } = TimeSpan.FromDays(365);

    /// <summary>How many distinct metric names and units are cached as shared strings.</summary>
    public int NameCacheCapacity { get; set; } = 4096;
}
