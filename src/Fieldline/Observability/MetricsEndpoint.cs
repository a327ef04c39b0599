namespace Fieldline.Observability;

/// <summary>Maps GET /metrics (open, like /health, so that a Prometheus server can scrape without a key).</summary>
internal static class MetricsEndpoint
{
    public static IEndpointRouteBuilder MapMetrics(this IEndpointRouteBuilder app)
    {
        app.MapGet("/metrics", async (DeviceMetrics devices, PrometheusExporter exporter, CancellationToken cancellationToken) =>
        {
            await devices.RefreshAsync(cancellationToken);
            return TypedResults.Text(exporter.Scrape(), PrometheusExporter.ContentType);
        })
        .ExcludeFromDescription();
        return app;
    }
}
