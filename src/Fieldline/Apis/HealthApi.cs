using Fieldline.Hosting;

namespace Fieldline.Apis;

/// <summary>Liveness (/health) and readiness (/ready) for orchestrators; both open.</summary>
internal static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", () => TypedResults.Ok(new HealthResponse("alive")))
            .WithTags("Health");

        app.MapGet("/ready", (IEnumerable<IReadinessCheck> checks) =>
        {
            var results = checks.Select(c => new ReadinessCheckResult(c.Name, c.IsReady)).ToList();
            var response = new ReadinessResponse(results.TrueForAll(r => r.Ready), results);
            return TypedResults.Json(response, statusCode: response.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        })
        .Produces<ReadinessResponse>()
        .Produces<ReadinessResponse>(StatusCodes.Status503ServiceUnavailable)
        .WithTags("Health");
        return app;
    }
}

internal sealed record HealthResponse(string Status);

internal sealed record ReadinessCheckResult(string Name, bool Ready);

internal sealed record ReadinessResponse(bool Ready, IReadOnlyList<ReadinessCheckResult> Checks);
