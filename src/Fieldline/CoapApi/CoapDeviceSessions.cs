using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Core.Events;
using Fieldline.Core.Security;
using Fieldline.Hosting;
using Microsoft.Extensions.Options;

namespace Fieldline.CoapApi;

/// <summary>How a CoAP request's token fared.</summary>
internal enum CoapAuthenticationStatus
{
    Success,

    /// <summary>No device has this token.</summary>
    Unknown,

    /// <summary>Too many unknown tokens from this address lately.</summary>
    Throttled,

    /// <summary>The device is in maintenance.</summary>
    NotAllowed,
}

/// <summary>
/// CoAP has no connections, so this stands in for them: it authenticates the token in a request's path, keeps a
/// device online while it observes a resource or sends requests, and marks it offline once idle for
/// <see cref="FieldlineCoapOptions.IdleTimeoutSeconds"/>. It is the CoAP side of <see cref="IDeviceConnections"/>:
/// a token rotated, a device deleted or put in maintenance is forgotten at once, and its observations end.
/// </summary>
/// <remarks>
/// Design note. Tokens are 256 random bits stored as SHA-256 (see <see cref="DeviceTokens"/>), so a token is found
/// by its hash with one indexed read. Tokens that worked are remembered for <see cref="TokenLifetime"/> so that a
/// device's requests cost no read; revocation in this process clears them at once, and the lifetime bounds how long
/// a change made elsewhere (another instance) goes unseen. Unknown tokens are never remembered: they are counted
/// per source address and refused unread once too many (<see cref="FailedAttemptLimiter"/>), which bounds guessing.
/// </remarks>
internal sealed partial class CoapDeviceSessions : BackgroundService, IDeviceConnections
{
    /// <summary>How long a token that worked is trusted without reading the registry again.</summary>
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromSeconds(60);

    /// <summary>Unknown tokens tolerated per source address per minute.</summary>
    public const int MaximumFailuresPerSource = 30;

    private const int MaximumTokenLength = 256;
    private const int MaximumRememberedTokens = 100_000;

    private readonly ConcurrentDictionary<string, RememberedToken> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Presence> _devices = new(StringComparer.Ordinal);
    private readonly FailedAttemptLimiter _failures;
    private readonly IDeviceRegistry _registry;
    private readonly DeviceConnectionTracker _tracker;
    private readonly EventBus _events;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<CoapDeviceSessions> _logger;
    private readonly TimeSpan _idleTimeout;

    public CoapDeviceSessions(IDeviceRegistry registry, DeviceConnectionTracker tracker, EventBus events, IOptions<FieldlineOptions> options, TimeProvider timeProvider, ILogger<CoapDeviceSessions> logger)
    {
        _registry = registry;
        _tracker = tracker;
        _events = events;
        _timeProvider = timeProvider;
        _logger = logger;
        _idleTimeout = TimeSpan.FromSeconds(options.Value.Coap.IdleTimeoutSeconds);
        _failures = new FailedAttemptLimiter(MaximumFailuresPerSource, TimeSpan.FromMinutes(1), timeProvider);
    }

    private long _revocations;

    /// <summary>Raised when a device's access was revoked, so that resources end its observations.</summary>
    public event Action<string>? Revoked;

    /// <summary>
    /// Raised for a device that observes but has been idle for the idle timeout: resources notify it again, and as
    /// that notification is Confirmable (the host sets the Confirmable interval to the idle timeout), a device that
    /// went away without a word fails to acknowledge it, its observations end, and it goes offline.
    /// </summary>
    public event Action<string>? Probe;

    /// <summary>Finds the device a token belongs to.</summary>
    public async ValueTask<(CoapAuthenticationStatus Status, string? DeviceId)> AuthenticateAsync(string token, IPEndPoint remote, CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetTimestamp();
        if (_tokens.TryGetValue(token, out var remembered) && _timeProvider.GetElapsedTime(remembered.At, now) < TokenLifetime)
        {
            return (CoapAuthenticationStatus.Success, remembered.DeviceId);
        }

        var revocations = Interlocked.Read(ref _revocations);
        var source = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4().ToString() : remote.Address.ToString();
        if (_failures.IsBlocked(source))
        {
            LogThrottled(source);
            return (CoapAuthenticationStatus.Throttled, null);
        }

        var credentials = token.Length is > 0 and <= MaximumTokenLength
            ? await _registry.FindByTokenHashAsync(DeviceTokens.Hash(token), cancellationToken).ConfigureAwait(false)
            : null;
        if (credentials is null || !DeviceTokens.Verify(Encoding.UTF8.GetBytes(token), credentials.TokenHash))
        {
            _failures.RecordFailure(source);
            LogUnknownToken(source);
            return (CoapAuthenticationStatus.Unknown, null);
        }

        if (credentials.Status == DeviceStatus.Maintenance)
        {
            return (CoapAuthenticationStatus.NotAllowed, credentials.DeviceId);
        }

        if (_tokens.Count >= MaximumRememberedTokens)
        {
            _tokens.Clear();
        }

        // A revocation while the registry was read may concern this token: it is used once, not remembered.
        if (Interlocked.Read(ref _revocations) == revocations)
        {
            _tokens[token] = new RememberedToken(credentials.DeviceId, now);
        }

        return (CoapAuthenticationStatus.Success, credentials.DeviceId);
    }

    /// <summary>The device sent a request: online now, and last_seen kept within a tenth of the idle timeout.</summary>
    public void Active(string deviceId)
    {
        var now = _timeProvider.GetTimestamp();
        var presence = _devices.GetOrAdd(deviceId, _ => new Presence());
        bool announce;
        bool connected;
        lock (presence)
        {
            presence.LastActive = now;
            connected = !presence.Online;
            announce = connected || _timeProvider.GetElapsedTime(presence.LastAnnounced, now) >= _idleTimeout / 10;
            if (announce)
            {
                presence.Online = true;
                presence.LastAnnounced = now;
            }
        }

        if (announce)
        {
            _tracker.Connected(deviceId);
        }

        if (connected)
        {
            _events.Publish(EventTypes.DeviceConnected, "coap", deviceId, new JsonObject { ["device_id"] = deviceId, ["protocol"] = "coap" });
        }
    }

    /// <summary>The device began observing a resource; it stays online while it observes.</summary>
    public void ObserveStarted(string deviceId)
    {
        var presence = _devices.GetOrAdd(deviceId, _ => new Presence());
        lock (presence)
        {
            presence.Observations++;
        }

        Active(deviceId);
    }

    /// <summary>An observation of the device ended; it goes offline when idle and observing nothing.</summary>
    public void ObserveEnded(string deviceId)
    {
        if (_devices.TryGetValue(deviceId, out var presence))
        {
            lock (presence)
            {
                presence.Observations = Math.Max(0, presence.Observations - 1);
            }
        }
    }

    /// <summary>Whether the device counts as online over CoAP.</summary>
    public bool IsOnline(string deviceId) => _devices.TryGetValue(deviceId, out var presence) && presence.Online;

    /// <inheritdoc />
    public int Disconnect(string deviceId)
    {
        Interlocked.Increment(ref _revocations);
        foreach (var (token, remembered) in _tokens)
        {
            if (remembered.DeviceId == deviceId)
            {
                _tokens.TryRemove(token, out _);
            }
        }

        var observations = _devices.TryGetValue(deviceId, out var presence) ? presence.Observations : 0;
        Revoked?.Invoke(deviceId);
        return observations;
    }

    /// <summary>Marks offline the devices idle for the timeout that observe nothing.</summary>
    internal void Sweep()
    {
        var now = _timeProvider.GetTimestamp();
        foreach (var (deviceId, presence) in _devices)
        {
            var offline = false;
            var probe = false;
            lock (presence)
            {
                if (presence.Online && _timeProvider.GetElapsedTime(presence.LastActive, now) >= _idleTimeout)
                {
                    if (presence.Observations == 0)
                    {
                        presence.Online = false;
                        offline = true;
                    }
                    else
                    {
                        presence.LastActive = now; // probed now; again after another idle timeout
                        probe = true;
                    }
                }
            }

            if (probe)
            {
                Probe?.Invoke(deviceId);
            }

            if (offline)
            {
                _tracker.Disconnected(deviceId);
                _events.Publish(EventTypes.DeviceDisconnected, "coap", deviceId, new JsonObject { ["device_id"] = deviceId, ["reason"] = "idle" });
                LogIdle(deviceId, _idleTimeout.TotalSeconds);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond / 10, _idleTimeout.Ticks / 10));
        using var timer = new PeriodicTimer(period, _timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                Sweep();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A CoAP request from {Source} named no device's token; refused with 4.01")]
    private partial void LogUnknownToken(string source);

    [LoggerMessage(Level = LogLevel.Debug, Message = "CoAP requests from {Source} refused with 4.29: too many unknown tokens in the last minute")]
    private partial void LogThrottled(string source);

    [LoggerMessage(Level = LogLevel.Information, Message = "Device {DeviceId} is offline: no CoAP request for {Seconds} s and no observation")]
    private partial void LogIdle(string deviceId, double seconds);

    private sealed record RememberedToken(string DeviceId, long At);

    private sealed class Presence
    {
        public long LastActive;
        public long LastAnnounced;
        public int Observations;
        public bool Online;
    }
}
