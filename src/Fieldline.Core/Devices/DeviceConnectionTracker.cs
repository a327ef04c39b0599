using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fieldline.Core.Devices;

/// <summary>
/// Turns connection events of any protocol into status changes in the registry (online with last_seen on
/// connect; offline on disconnect). Events are queued and written by one background loop, so that a protocol's
/// connection thread never waits for the database.
/// </summary>
public sealed partial class DeviceConnectionTracker : BackgroundService
{
    private readonly Channel<(string DeviceId, DeviceStatus Status, DateTimeOffset At)> _changes =
        Channel.CreateBounded<(string, DeviceStatus, DateTimeOffset)>(new BoundedChannelOptions(100_000) { SingleReader = true, FullMode = BoundedChannelFullMode.DropOldest });

    private readonly IDeviceRegistry _registry;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<DeviceConnectionTracker> _logger;

    /// <summary>Creates the tracker.</summary>
    public DeviceConnectionTracker(IDeviceRegistry registry, TimeProvider timeProvider, ILogger<DeviceConnectionTracker> logger)
    {
        _registry = registry;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>The device connected.</summary>
    public void Connected(string deviceId) => _changes.Writer.TryWrite((deviceId, DeviceStatus.Online, _timeProvider.GetUtcNow()));

    /// <summary>The device disconnected (cleanly, by keep-alive timeout or with its last will).</summary>
    public void Disconnected(string deviceId) => _changes.Writer.TryWrite((deviceId, DeviceStatus.Offline, _timeProvider.GetUtcNow()));

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (deviceId, status, at) in _changes.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await _registry.SetConnectionStatusAsync(deviceId, status, at, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogStatusWriteFailed(_logger, deviceId, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(LogLevel.Warning, "Could not record the connection status of device {DeviceId}")]
    private static partial void LogStatusWriteFailed(ILogger logger, string deviceId, Exception exception);
}
