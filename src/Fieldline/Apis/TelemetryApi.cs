using System.Globalization;
using System.Text.Json.Nodes;
using Fieldline.Core.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fieldline.Apis;

/// <summary>/api/v1/devices/{id}/telemetry: the latest values, raw points and aggregates of a device's metrics.</summary>
internal static class TelemetryApi
{
    public const int DefaultPointLimit = 1000;
    public const int MaximumPointLimit = 10_000;
    public const long MaximumBuckets = 100_000;
    public const int MaximumMetricLength = 128;

    /// <summary>Without from/to, queries cover the last hour.</summary>
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromHours(1);

    public static RouteGroupBuilder MapTelemetryApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices/{deviceId}/telemetry").WithTags("Telemetry");
        api.MapGet("/latest", GetLatest);
        api.MapGet("/live", StreamLive);
        api.MapGet("/{metric}", GetPoints);
        api.MapGet("/{metric}/aggregate", GetAggregates);
        return api;
    }

    private static async Task<Results<Ok<IReadOnlyList<LatestValueResponse>>, ProblemHttpResult>> GetLatest(
        string deviceId, [AsParameters] DeviceServices services, CancellationToken cancellationToken)
    {
        if (await services.Registry.GetAsync(deviceId, cancellationToken) is null)
        {
            return DevicesApi.DeviceNotFound(deviceId);
        }

        var latest = await services.Telemetry.GetLatestAsync(deviceId, cancellationToken);
        return TypedResults.Ok<IReadOnlyList<LatestValueResponse>>(
            [.. latest.Select(v => new LatestValueResponse(v.Metric, v.Value, v.Unit, DateTimeOffset.FromUnixTimeMilliseconds(v.TimestampMs)))]);
    }

    /// <summary>
    /// The device's points as Server-Sent Events, each accepted message as one <c>telemetry</c> event once it is
    /// durable: <c>{"points":[{"metric","value","unit","timestamp"}]}</c>. A client that falls behind misses the
    /// oldest messages, not the newest.
    /// </summary>
    private static async Task<IResult> StreamLive(
        string deviceId, HttpContext context, [AsParameters] DeviceServices services, LiveTelemetry live, CancellationToken cancellationToken)
    {
        if (await services.Registry.GetAsync(deviceId, cancellationToken) is null)
        {
            return DevicesApi.DeviceNotFound(deviceId);
        }

        try
        {
            await ServerSentEventStream.WriteAsync(context.Response, live.WatchAsync(deviceId, cancellationToken), LiveFrame, services.TimeProvider, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }

        return TypedResults.Empty;
    }

    private static string LiveFrame(TelemetryPoint[] points)
    {
        var array = new JsonArray();
        foreach (var point in points)
        {
            var item = new JsonObject
            {
                ["metric"] = point.Metric,
                ["value"] = point.Value,
                ["timestamp"] = DateTimeOffset.FromUnixTimeMilliseconds(point.TimestampMs).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            };
            if (point.Unit is not null)
            {
                item["unit"] = point.Unit;
            }

            array.Add(item);
        }

        return "event: telemetry\ndata: " + new JsonObject { ["points"] = array }.ToJsonString() + "\n\n";
    }

    private static async Task<Results<Ok<PointPageResponse>, ValidationProblem, ProblemHttpResult>> GetPoints(
        string deviceId,
        string metric,
        string? from,
        string? to,
        int? limit,
        string? cursor,
        [AsParameters] DeviceServices services,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        CheckMetric(errors, metric);
        var (fromMs, toMs) = ParseWindow(errors, from, to, services.TimeProvider);
        var pointLimit = limit ?? DefaultPointLimit;
        if (pointLimit is < 1 or > MaximumPointLimit)
        {
            errors["limit"] = [$"must be between 1 and {MaximumPointLimit}"];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (await services.Registry.GetAsync(deviceId, cancellationToken) is null)
        {
            return DevicesApi.DeviceNotFound(deviceId);
        }

        RawPointPage page;
        try
        {
            page = await services.Telemetry.QueryRawAsync(deviceId, metric, fromMs, toMs, pointLimit, cursor, cancellationToken);
        }
        catch (Exception e) when (cursor is not null && e is ArgumentException or FormatException)
        {
            // The store owns the cursor format; a cursor it cannot read is the client's mistake, not a server error.
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["cursor"] = ["is not a cursor returned by this API"] });
        }

        return TypedResults.Ok(new PointPageResponse([.. page.Points.Select(p => new PointResponse(p.TimestampMs, p.Value))], page.NextCursor));
    }

    private static async Task<Results<Ok<IReadOnlyList<BucketResponse>>, ValidationProblem, ProblemHttpResult>> GetAggregates(
        string deviceId,
        string metric,
        string? from,
        string? to,
        string? interval,
        [AsParameters] DeviceServices services,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        CheckMetric(errors, metric);
        var (fromMs, toMs) = ParseWindow(errors, from, to, services.TimeProvider);
        var intervalMs = 0L;
        if (!TryParseInterval(interval ?? "1m", out intervalMs))
        {
            errors["interval"] = ["must be a positive number followed by s, m, h or d, e.g. 10s, 1m, 1h, 1d"];
        }
        else if (toMs > fromMs && (((ulong)(toMs - fromMs) - 1) / (ulong)intervalMs) + 1 > MaximumBuckets)
        {
            errors["interval"] = [$"is too small for the time range: at most {MaximumBuckets} buckets"];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (await services.Registry.GetAsync(deviceId, cancellationToken) is null)
        {
            return DevicesApi.DeviceNotFound(deviceId);
        }

        var buckets = await services.Telemetry.QueryAggregatesAsync(deviceId, metric, fromMs, toMs, intervalMs, cancellationToken);
        return TypedResults.Ok<IReadOnlyList<BucketResponse>>(
            [.. buckets.Select(b => new BucketResponse(b.StartMs, b.Count, b.Mean, b.Min, b.Max, b.StdDev))]);
    }

    private static void CheckMetric(Dictionary<string, string[]> errors, string metric)
    {
        if (metric.Length is 0 or > MaximumMetricLength)
        {
            errors["metric"] = [$"must be 1 to {MaximumMetricLength} characters"];
        }
    }

    private static (long FromMs, long ToMs) ParseWindow(Dictionary<string, string[]> errors, string? from, string? to, TimeProvider timeProvider)
    {
        var toMs = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        if (to is not null && !TryParseInstant(to, out toMs))
        {
            errors["to"] = ["must be an ISO 8601 timestamp or Unix milliseconds"];
        }

        var fromMs = toMs - (long)DefaultWindow.TotalMilliseconds;
        if (from is not null && !TryParseInstant(from, out fromMs))
        {
            errors["from"] = ["must be an ISO 8601 timestamp or Unix milliseconds"];
        }

        if (!errors.ContainsKey("from") && !errors.ContainsKey("to") && fromMs >= toMs)
        {
            errors["from"] = ["must be before to"];
        }

        return (fromMs, toMs);
    }

    /// <summary>Unix milliseconds, or an ISO 8601 timestamp (UTC unless it carries an offset).</summary>
    internal static bool TryParseInstant(string text, out long unixMs)
    {
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out unixMs))
        {
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var instant))
        {
            unixMs = instant.ToUnixTimeMilliseconds();
            return true;
        }

        return false;
    }

    /// <summary>"10s", "1m", "1h", "1d" (also "500ms") to milliseconds.</summary>
    internal static bool TryParseInterval(string text, out long intervalMs)
    {
        intervalMs = 0;
        var unitStart = text.AsSpan().IndexOfAnyExceptInRange('0', '9');
        if (unitStart <= 0 || !long.TryParse(text.AsSpan(0, unitStart), NumberStyles.None, CultureInfo.InvariantCulture, out var amount) || amount == 0)
        {
            return false;
        }

        long? unitMs = text[unitStart..] switch
        {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => null,
        };

        if (unitMs is null || amount > long.MaxValue / unitMs.Value)
        {
            return false;
        }

        intervalMs = amount * unitMs.Value;
        return true;
    }
}

internal sealed record LatestValueResponse(string Metric, double Value, string? Unit, DateTimeOffset Timestamp);

/// <summary>A raw point; <see cref="Timestamp"/> is Unix milliseconds, compact for long series.</summary>
internal sealed record PointResponse(long Timestamp, double Value);

internal sealed record PointPageResponse(IReadOnlyList<PointResponse> Points, string? NextCursor);

/// <summary>One aggregate bucket; <see cref="Start"/> is Unix milliseconds like the points.</summary>
internal sealed record BucketResponse(long Start, long Count, double Mean, double Min, double Max, double Stddev);
