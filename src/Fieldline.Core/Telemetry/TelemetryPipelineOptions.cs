namespace Fieldline.Core.Telemetry;

/// <summary>Limits of <see cref="TelemetryPipeline"/>.</summary>
public sealed class TelemetryPipelineOptions
{
    /// <summary>The most points written in one store append; a larger backlog continues in the next batch.</summary>
    public int MaxBatchPoints { get; set; } = 20_000;

    /// <summary>
    /// Soft bound on points waiting to be written. Beyond it, new points are deferred to a later batch so that
    /// their submitters wait longer; nothing is dropped.
    /// </summary>
    public long MaxQueuedPoints { get; set; } = 200_000;
}
