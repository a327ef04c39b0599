using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Fieldline.Core.Telemetry;

/// <summary>
/// Deletes telemetry older than <see cref="TelemetryRetentionOptions.MaxAge"/> at startup and then every
/// <see cref="TelemetryRetentionOptions.Interval"/>. Does nothing when the max age is zero. The store must be
/// opened before the host starts this service.
/// </summary>
public sealed partial class TelemetryRetentionService : BackgroundService
{
    private readonly ITelemetryStore store;
    private readonly TelemetryRetentionOptions options;
    private readonly TimeProvider timeProvider;
    private readonly ILogger<TelemetryRetentionService> logger;

    /// <summary>Creates the service.</summary>
    public TelemetryRetentionService(ITelemetryStore store, IOptions<TelemetryRetentionOptions> options, TimeProvider timeProvider, ILogger<TelemetryRetentionService> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.store = store ?? throw new ArgumentNullException(nameof(store));
        this.options = options.Value;
        this.timeProvider = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        this.logger = logger ?? throw new ArgumentNullException(nameof(logger));
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.MaxAge, TimeSpan.Zero, nameof(options));
        if (this.options.MaxAge > TimeSpan.Zero)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(this.options.Interval, TimeSpan.Zero, nameof(options));
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.MaxAge <= TimeSpan.Zero)
        {
            LogDisabled();
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                await Task.Delay(options.Interval, timeProvider, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Retention is housekeeping: a failed run is logged and retried at the next interval.
                LogFailed(ex);
                await Task.Delay(options.Interval, timeProvider, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Deletes everything older than now minus the max age; returns the store's (approximate) count.</summary>
    internal async Task<long> RunOnceAsync(CancellationToken cancellationToken)
    {
        var cutoffMs = (timeProvider.GetUtcNow() - options.MaxAge).ToUnixTimeMilliseconds();
        var removed = await store.DeleteOlderThanAsync(cutoffMs, cancellationToken).ConfigureAwait(false);
        LogApplied(removed, cutoffMs);
        return removed;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Telemetry retention is disabled (max age zero)")]
    private partial void LogDisabled();

    [LoggerMessage(Level = LogLevel.Information, Message = "Telemetry retention removed about {Removed} points older than {CutoffMs}")]
    private partial void LogApplied(long removed, long cutoffMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "Telemetry retention failed; retrying at the next interval")]
    private partial void LogFailed(Exception exception);
}
