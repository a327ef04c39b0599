using System.Collections.Concurrent;
using System.Text;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;

namespace Fieldline.CoapApi;

/// <summary>
/// A resource of the device API under <c>/api/v1/{token}/</c> (ThingsBoard's CoAP convention): the token in the path
/// names the device, and a request without a valid one gets 4.01 (4.29 once its address has sent too many, 4.03 for
/// a device in maintenance). Each request counts as the device's activity; notifications do not. Observations are
/// tracked per device, so that a change of one device's state notifies its observers only.
/// </summary>
internal abstract class DeviceCoapResource : CoapResource
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, int>> _observedPaths = new(StringComparer.Ordinal);

    protected DeviceCoapResource(string suffix, CoapDeviceSessions sessions)
        : base("/api/v1/{token}/" + suffix)
    {
        Sessions = sessions;
        sessions.Revoked += NotifyDevice; // each observer is answered again, now 4.01, which ends the observation
        sessions.Probe += NotifyDevice;
    }

    /// <summary>One observation per path, and the path names the device: a device observing again (after a restart, from a new port) replaces its old observation.</summary>
    public override int MaximumObserversPerPath => 1;

    protected CoapDeviceSessions Sessions { get; }

    public sealed override async ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
    {
        // An observation's request comes back at each notification with the device it named kept in State.
        var notification = request.State is not null;
        var (status, deviceId) = await Sessions.AuthenticateAsync(request.Path[2], request.Remote, cancellationToken).ConfigureAwait(false);
        switch (status)
        {
            case CoapAuthenticationStatus.Unknown:
                return CoapResponse.Text(CoapCode.Unauthorized, "The token in the path is not a device's token.");
            case CoapAuthenticationStatus.Throttled:
                return CoapResponse.Text(CoapCode.TooManyRequests, "Too many requests with unknown tokens from this address; try again in a minute.") with
                {
                    Options = [(CoapOptionNumber.MaxAge, CoapOption.ToBytes(60))],
                };
            case CoapAuthenticationStatus.NotAllowed:
                return CoapResponse.Text(CoapCode.Forbidden, "The device is in maintenance.");
        }

        if (notification && !string.Equals((string)request.State!, deviceId, StringComparison.Ordinal))
        {
            return CoapResponse.Text(CoapCode.Unauthorized, "The token now names another device.");
        }

        request.State = deviceId;
        if (!notification)
        {
            Sessions.Active(deviceId!);
        }

        return await HandleDeviceAsync(deviceId!, request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Answers an authenticated request of <paramref name="deviceId"/>.</summary>
    protected abstract ValueTask<CoapResponse> HandleDeviceAsync(string deviceId, CoapRequest request, CancellationToken cancellationToken);

    /// <summary>Tells the observers of this resource for <paramref name="deviceId"/> that it changed.</summary>
    protected void NotifyDevice(string deviceId)
    {
        if (_observedPaths.TryGetValue(deviceId, out var paths))
        {
            foreach (var path in paths.Keys)
            {
                NotifyObservers(path);
            }
        }
    }

    protected override void OnObserveStarted(CoapRequest request)
    {
        var deviceId = (string)request.State!;
        _observedPaths.GetOrAdd(deviceId, _ => new ConcurrentDictionary<string, int>(StringComparer.Ordinal))
            .AddOrUpdate(request.PathText, 1, (_, count) => count + 1);
        Sessions.ObserveStarted(deviceId);
    }

    protected override void OnObserveEnded(CoapRequest request)
    {
        var deviceId = (string)request.State!;
        if (_observedPaths.TryGetValue(deviceId, out var paths))
        {
            if (paths.AddOrUpdate(request.PathText, 0, (_, count) => count - 1) <= 0)
            {
                paths.TryRemove(new KeyValuePair<string, int>(request.PathText, 0));
            }
        }

        Sessions.ObserveEnded(deviceId);
    }

    /// <summary>A 4.00 with the reason as text.</summary>
    protected static CoapResponse BadRequest(string reason) => CoapResponse.Text(CoapCode.BadRequest, reason);

    /// <summary>A JSON answer.</summary>
    protected static CoapResponse Json(CoapCode code, System.Text.Json.Nodes.JsonNode document) =>
        new(code, CoapContentFormat.Json, Encoding.UTF8.GetBytes(document.ToJsonString()));
}
