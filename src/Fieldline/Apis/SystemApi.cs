using System.Runtime.CompilerServices;
using System.Text.Json;
using Fieldline.CoapApi;
using Fieldline.Core;
using Fieldline.Core.Devices;
using Fieldline.Mqtt.Server;
using Fieldline.Observability;
using Microsoft.Extensions.Options;

namespace Fieldline.Apis;

/// <summary>
/// /api/v1/system/stats: the platform at a glance (devices by status and type, broker and CoAP figures, messages per
/// second over the last 15 minutes), as one JSON document or, at <c>/stream</c>, as a <c>stats</c> Server-Sent Event
/// every second whose <c>traffic</c> holds only the samples the stream has not sent yet.
/// </summary>
internal static class SystemApi
{
    public static IEndpointRouteBuilder MapSystemApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/system").WithTags("System");
        api.MapGet("/stats", async (SystemStats stats, CancellationToken cancellationToken) =>
            TypedResults.Ok(await stats.SnapshotAsync(afterTime: 0, cancellationToken)));
        api.MapGet("/stats/stream", StreamStats);
        return app;
    }

    private static async Task<IResult> StreamStats(
        HttpContext context, SystemStats stats, TimeProvider timeProvider, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, CancellationToken cancellationToken)
    {
        try
        {
            await ServerSentEventStream.WriteAsync(
                context.Response,
                Snapshots(stats, timeProvider, cancellationToken),
                snapshot => "event: stats\ndata: " + JsonSerializer.Serialize(snapshot, json.Value.SerializerOptions) + "\n\n",
                timeProvider,
                cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }

        return TypedResults.Empty;
    }

    private static async IAsyncEnumerable<SystemStatsResponse> Snapshots(SystemStats stats, TimeProvider timeProvider, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sent = 0L;
        using var timer = new PeriodicTimer(TrafficHistory.Interval, timeProvider);
        do
        {
            var snapshot = await stats.SnapshotAsync(sent, cancellationToken);
            if (snapshot.Traffic.Samples.Count > 0)
            {
                sent = snapshot.Traffic.Samples[^1].Time;
            }

            yield return snapshot;
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }
}

/// <summary>
/// Gathers the figures of <c>/api/v1/system/stats</c>. Device counts are a grouped query over the registry, so they
/// are kept for a few seconds and shared by every caller: many open consoles cost one query per period, not one each.
/// </summary>
internal sealed class SystemStats(IDeviceRegistry registry, MqttBroker broker, CoapListener coap, TrafficHistory traffic, TimeProvider timeProvider) : IDisposable
{
    private static readonly TimeSpan CountsMaxAge = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _countsGate = new(1, 1);
    private IReadOnlyDictionary<(DeviceStatus Status, DeviceType Type), long>? _counts;
    private long _countedAt;

    public void Dispose() => _countsGate.Dispose();

    public async Task<SystemStatsResponse> SnapshotAsync(long afterTime, CancellationToken cancellationToken)
    {
        var counts = await CountsAsync(cancellationToken);
        var server = coap.Server;
        return new SystemStatsResponse(
            timeProvider.GetUtcNow(),
            DeviceCountsResponse.From(counts),
            new MqttStatsResponse(broker.ConnectedClients, broker.SessionCount, broker.SubscriptionCount, broker.RetainedCount, broker.MessagesReceived, broker.MessagesSent),
            new CoapStatsResponse(server is not null, server?.ObserverCount ?? 0, server?.MessagesReceived ?? 0, server?.MessagesSent ?? 0),
            new TrafficResponse((int)TrafficHistory.Interval.TotalSeconds, traffic.Since(afterTime)));
    }

    private async Task<IReadOnlyDictionary<(DeviceStatus Status, DeviceType Type), long>> CountsAsync(CancellationToken cancellationToken)
    {
        if (_counts is { } fresh && timeProvider.GetElapsedTime(_countedAt) < CountsMaxAge)
        {
            return fresh;
        }

        await _countsGate.WaitAsync(cancellationToken);
        try
        {
            if (_counts is null || timeProvider.GetElapsedTime(_countedAt) >= CountsMaxAge)
            {
                _counts = await registry.CountAsync(cancellationToken);
                _countedAt = timeProvider.GetTimestamp();
            }

            return _counts;
        }
        finally
        {
            _countsGate.Release();
        }
    }
}

internal sealed record SystemStatsResponse(DateTimeOffset Time, DeviceCountsResponse Devices, MqttStatsResponse Mqtt, CoapStatsResponse Coap, TrafficResponse Traffic);

internal sealed record DeviceCountsResponse(long Total, IReadOnlyDictionary<string, long> ByStatus, IReadOnlyDictionary<string, long> ByType)
{
    /// <summary>The registry's counts by (status, type) summed per status and per type, every status and type present.</summary>
    public static DeviceCountsResponse From(IReadOnlyDictionary<(DeviceStatus Status, DeviceType Type), long> counts) => new(
        counts.Values.Sum(),
        Enum.GetValues<DeviceStatus>().ToDictionary(WireNames.Name, s => counts.Where(c => c.Key.Status == s).Sum(c => c.Value)),
        Enum.GetValues<DeviceType>().ToDictionary(WireNames.Name, t => counts.Where(c => c.Key.Type == t).Sum(c => c.Value)));
}

internal sealed record MqttStatsResponse(int Connections, int Sessions, int Subscriptions, int Retained, long MessagesReceived, long MessagesSent);

internal sealed record CoapStatsResponse(bool Enabled, int Observations, long MessagesReceived, long MessagesSent);

/// <summary>Messages per second, one sample per <see cref="IntervalSeconds"/>, oldest first.</summary>
internal sealed record TrafficResponse(int IntervalSeconds, IReadOnlyList<TrafficSample> Samples);
