using Fieldline.Core.Commands;

namespace Fieldline.Broker;

/// <summary>Ends overdue commands once a second: expired while pending, timed out once delivered (also after a restart).</summary>
internal sealed partial class CommandExpiryService(CommandService commands, TimeProvider timeProvider, ILogger<CommandExpiryService> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await commands.ExpireOverdueAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogExpiryFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ending overdue commands failed; retrying in a second")]
    private static partial void LogExpiryFailed(ILogger logger, Exception exception);
}
