using Fieldline.Core.Telemetry;

namespace Fieldline.Hosting;

/// <summary>On stop, waits until every point the pipeline holds is durable.</summary>
internal sealed class TelemetryPipelineFlush(TelemetryPipeline pipeline) : IShutdownFlush
{
    public Task FlushAsync(CancellationToken cancellationToken) => pipeline.FlushAsync(cancellationToken);
}
