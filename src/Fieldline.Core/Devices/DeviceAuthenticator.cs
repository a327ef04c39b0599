using Microsoft.Extensions.Logging;

namespace Fieldline.Core.Devices;

/// <summary>The outcome of a device's authentication.</summary>
public enum DeviceAuthenticationStatus
{
    /// <summary>Valid credentials, device allowed in.</summary>
    Success,

    /// <summary>No device has that id, or the token is wrong (not told apart to the client).</summary>
    BadCredentials,

    /// <summary>The credentials are valid but the device is in maintenance.</summary>
    NotAllowed,

    /// <summary>Too many failures for this device or source address; try later.</summary>
    Throttled,
}

/// <summary>
/// Authenticates devices by id and token for any protocol: checks the throttle, then the token's hash in
/// constant time, then the device's status. Failed attempts are limited per device and per source address.
/// </summary>
public sealed partial class DeviceAuthenticator
{
    private readonly IDeviceRegistry _registry;
    private readonly Security.FailedAttemptLimiter _perDevice;
    private readonly Security.FailedAttemptLimiter _perSource;
    private readonly ILogger<DeviceAuthenticator> _logger;
    private readonly TimeProvider _timeProvider;

    /// <summary>Creates the authenticator.</summary>
    public DeviceAuthenticator(IDeviceRegistry registry, TimeProvider timeProvider, ILogger<DeviceAuthenticator> logger, int maxFailuresPerDevice = 10, int maxFailuresPerSource = 30, TimeSpan? window = null)
    {
        _registry = registry;
        _logger = logger;
        _timeProvider = timeProvider;
        var span = window ?? TimeSpan.FromMinutes(1);
        _perDevice = new Security.FailedAttemptLimiter(maxFailuresPerDevice, span, timeProvider);
        _perSource = new Security.FailedAttemptLimiter(maxFailuresPerSource, span, timeProvider);
    }

    /// <summary>Authenticates <paramref name="deviceId"/> with the token given as UTF-8 bytes.</summary>
    public async ValueTask<DeviceAuthenticationStatus> AuthenticateAsync(string deviceId, ReadOnlyMemory<byte> token, string? sourceAddress, CancellationToken cancellationToken)
    {
        var source = sourceAddress ?? "unknown";
        if (_perDevice.IsBlocked(deviceId) || _perSource.IsBlocked(source))
        {
            LogThrottled(_logger, deviceId, source);
            return DeviceAuthenticationStatus.Throttled;
        }

        var credentials = await _registry.GetCredentialsAsync(deviceId, cancellationToken).ConfigureAwait(false);
        if (credentials is null || !DeviceTokens.Verify(token.Span, credentials.TokenHash))
        {
            _perDevice.RecordFailure(deviceId);
            _perSource.RecordFailure(source);
            LogBadCredentials(_logger, deviceId, source);
            return DeviceAuthenticationStatus.BadCredentials;
        }

        if (credentials.Status == DeviceStatus.Maintenance)
        {
            return DeviceAuthenticationStatus.NotAllowed;
        }

        _perDevice.Reset(deviceId);
        return DeviceAuthenticationStatus.Success;
    }

    [LoggerMessage(LogLevel.Information, "Authentication of device {DeviceId} from {Source} failed: unknown device or wrong token")]
    private static partial void LogBadCredentials(ILogger logger, string deviceId, string source);

    [LoggerMessage(LogLevel.Warning, "Authentication of device {DeviceId} from {Source} refused: too many failed attempts")]
    private static partial void LogThrottled(ILogger logger, string deviceId, string source);
}
