using Fieldline.Core.Telemetry;
using Microsoft.Extensions.Options;

namespace Fieldline.Hosting;

/// <summary>
/// Deletes telemetry older than <see cref="FieldlineTelemetryOptions.RetentionDays"/>: once at start, then every
/// <see cref="Period"/>. Started after <see cref="StorageLifetime"/>, so the store is open.
/// </summary>
internal sealed partial class TelemetryRetention(
    ITelemetryStore store,
    IOptions<FieldlineOptions> options,
    TimeProvider timeProvider,
    ILogger<TelemetryRetention> logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, timeProvider);
        do
        {
            var cutoff = timeProvider.GetUtcNow() - TimeSpan.FromDays(options.Value.Telemetry.RetentionDays);
            try
            {
                var deleted = await store.DeleteOlderThanAsync(cutoff.ToUnixTimeMilliseconds(), stoppingToken);
                LogDeleted(logger, deleted, cutoff);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A failed pass is retried on the next tick; retention must not stop the host.
                LogFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Retention deleted {Count} points older than {Cutoff:O}")]
    private static partial void LogDeleted(ILogger logger, long count, DateTimeOffset cutoff);

    [LoggerMessage(Level = LogLevel.Error, Message = "Retention pass failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
