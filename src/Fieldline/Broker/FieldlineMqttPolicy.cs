using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Core;
using Fieldline.Core.Devices;
using Fieldline.Core.Events;
using Fieldline.Core.Security;
using Fieldline.Core.ServiceAccounts;
using Fieldline.Core.Shadows;
using Fieldline.Core.Telemetry;
using Fieldline.Hosting;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;
using Microsoft.Extensions.Options;

namespace Fieldline.Broker;

/// <summary>
/// The platform's rules for the broker. A user name is, in this order: the operator login <c>$admin</c> (password:
/// the admin API key; may publish anywhere but '$' topics and subscribe to anything), a service account (password
/// checked against its PBKDF2 hash; topics as its rules allow), or a device (its token, or over TLS a client
/// certificate registered to it or issued by a configured CA for its id; only its own topics; telemetry on
/// <c>sensor/{id}/telemetry</c> is acknowledged once durable). Device ids cannot start with '$' and cannot be a
/// service account's user name, so the three never collide. Without a user name a client is refused, unless
/// anonymous access is on: then it may use any topic outside <see cref="ReservedTopics"/>.
/// </summary>
internal sealed class FieldlineMqttPolicy(
    DeviceAuthenticator deviceAuthenticator,
    ServiceAccountAuthenticator serviceAccountAuthenticator,
    IDeviceRegistry deviceRegistry,
    IAdminKeyVerifier adminKeyVerifier,
    TelemetryIngest telemetryIngest,
    DeviceConnectionTracker connectionTracker,
    DeviceShadowTopics shadowTopics,
    DeviceCommandTopics commandTopics,
    DeviceRequestTopics requestTopics,
    ShadowService shadows,
    EventBus events,
    IOptions<FieldlineOptions> options,
    TimeProvider timeProvider) : MqttBrokerPolicy
{
    private readonly FailedAttemptLimiter _operatorFailures = new(maxFailures: 10, TimeSpan.FromMinutes(1), timeProvider);
    private readonly bool _allowAnonymous = options.Value.Mqtt.AllowAnonymous;
    private readonly HashSet<DeviceType> _telemetryToReported = [.. options.Value.Shadows.TelemetryToReported.Select(t => WireNames.TryParse<DeviceType>(t, out var type) ? type : throw new ArgumentException($"Not a device type: {t}"))];
    private readonly AnonymousTopicRules _anonymous = new(options.Value.Mqtt.AnonymousDenyPublish, options.Value.Mqtt.AnonymousDenySubscribe);

    /// <summary>The user name of the operator login.</summary>
    public const string OperatorUsername = "$admin";

    public override async ValueTask<MqttReasonCode> AuthenticateAsync(MqttClientContext client, ReadOnlyMemory<byte> password, CancellationToken cancellationToken)
    {
        var username = client.Username;
        var source = (client.RemoteEndPoint as IPEndPoint)?.Address.ToString() ?? client.RemoteEndPoint?.ToString() ?? "unknown";
        if (client.ClientCertificate is { } certificate && password.IsEmpty && username != OperatorUsername)
        {
            // A certificate instead of a token: the user name, if any, only has to agree with it.
            var authentication = await deviceAuthenticator.AuthenticateCertificateAsync(
                certificate, string.IsNullOrEmpty(username) ? null : username, source, cancellationToken).ConfigureAwait(false);
            if (authentication is { Status: DeviceAuthenticationStatus.Success, DeviceId: { } deviceId })
            {
                client.Identity = await IdentityOfAsync(deviceId, cancellationToken).ConfigureAwait(false);

                // Without a user name the session would belong to nobody, and any other certificate could take it over.
                client.SessionOwner = deviceId;
                return MqttReasonCode.Success;
            }

            return ToReasonCode(authentication.Status);
        }

        if (string.IsNullOrEmpty(username))
        {
            return await AuthenticateAnonymousAsync(client, password, cancellationToken).ConfigureAwait(false);
        }
        if (username == OperatorUsername)
        {
            // The admin key is throttled per source address like device tokens, so it cannot be guessed faster.
            if (_operatorFailures.IsBlocked(source))
            {
                return MqttReasonCode.ConnectionRateExceeded;
            }

            if (!adminKeyVerifier.Verify(password.Span))
            {
                _operatorFailures.RecordFailure(source);
                return MqttReasonCode.BadUserNameOrPassword;
            }

            client.Identity = OperatorIdentity.Instance;
            return MqttReasonCode.Success;
        }

        var account = await serviceAccountAuthenticator.AuthenticateAsync(username, client.ClientId, password, source, cancellationToken).ConfigureAwait(false);
        switch (account.Status)
        {
            case ServiceAccountAuthenticationStatus.Success:
                client.Identity = account.Identity;
                return MqttReasonCode.Success;
            case ServiceAccountAuthenticationStatus.Throttled:
                return MqttReasonCode.ConnectionRateExceeded;
            case ServiceAccountAuthenticationStatus.BadPassword:
                return MqttReasonCode.BadUserNameOrPassword;
        }

        // Not a service account: the user name is a device id, or nobody's.
        var status = await deviceAuthenticator.AuthenticateAsync(username, password, source, cancellationToken).ConfigureAwait(false);
        if (status == DeviceAuthenticationStatus.Success)
        {
            client.Identity = await IdentityOfAsync(username, cancellationToken).ConfigureAwait(false);
        }

        return ToReasonCode(status);
    }

    public override bool CanPublish(MqttClientContext client, ReadOnlySpan<byte> topic) => client.Identity switch
    {
        DeviceIdentity device => DeviceTopics.MayPublish(device, topic),
        ServiceAccountIdentity account => account.MayPublish(topic),
        AnonymousIdentity => _anonymous.MayPublish(topic),
        OperatorIdentity => topic.IsEmpty || topic[0] != '$',
        _ => false,
    };

    public override bool CanSubscribe(MqttClientContext client, string filter) =>
        AuthorizeSubscribe(client, filter) == MqttSubscribeAuthorization.Granted;

    public override MqttSubscribeAuthorization AuthorizeSubscribe(MqttClientContext client, string filter)
    {
        var utf8 = Encoding.UTF8.GetBytes(filter);
        var allowed = client.Identity switch
        {
            DeviceIdentity device => DeviceTopics.MaySubscribe(device, utf8),
            ServiceAccountIdentity account => account.MaySubscribe(utf8),
            OperatorIdentity => true,
            AnonymousIdentity => !ReservedTopics.MayMatchReserved(utf8),
            _ => false,
        };
        if (client.Identity is AnonymousIdentity)
        {
            return AuthorizeAnonymousSubscribe(utf8, allowed);
        }

        return allowed ? MqttSubscribeAuthorization.Granted : MqttSubscribeAuthorization.Denied;
    }

    public override bool CanReceive(MqttClientContext client, ReadOnlySpan<byte> topic) =>
        client.Identity is not AnonymousIdentity || _anonymous.MayReceive(topic);

    private MqttSubscribeAuthorization AuthorizeAnonymousSubscribe(byte[] filter, bool outsideReserved)
    {
        if (!_anonymous.MaySubscribe(filter))
        {
            return MqttSubscribeAuthorization.Denied;
        }

        // An anonymous '#' or '+/...' is granted as a plain broker would, but never delivers a reserved topic, nor
        // one the configuration denies to anonymous subscribers.
        if (!outsideReserved)
        {
            return filter[0] is (byte)'#' or (byte)'+' ? MqttSubscribeAuthorization.GrantedWithDeliveryCheck : MqttSubscribeAuthorization.Denied;
        }

        return _anonymous.NeedsDeliveryCheck(filter) ? MqttSubscribeAuthorization.GrantedWithDeliveryCheck : MqttSubscribeAuthorization.Granted;
    }

    public override MqttSubscribeAuthorization AuthorizeRestoredSubscription(MqttClientContext owner, string filter)
    {
        // Devices and service accounts had their filters authorized when they subscribed. An anonymous session's
        // '#' was granted with a delivery check, which is not stored: it gets it again, or goes when anonymous access is off.
        if (!string.IsNullOrEmpty(owner.Username))
        {
            return MqttSubscribeAuthorization.Granted;
        }

        if (!_allowAnonymous)
        {
            return MqttSubscribeAuthorization.Denied;
        }

        owner.Identity = AnonymousIdentity.Instance;
        return AuthorizeSubscribe(owner, filter);
    }

    public override MqttPublishDecision OnPublish(MqttClientContext client, in MqttInboundPublish publish)
    {
        if (client.Identity is not DeviceIdentity device)
        {
            return MqttPublishDecision.Accept;
        }

        if (!publish.TopicUtf8.Span.SequenceEqual(device.TelemetryTopic))
        {
            var topic = publish.TopicUtf8.Span;
            if (!topic.StartsWith(device.DevicePrefix))
            {
                return MqttPublishDecision.Accept;
            }

            // The handlers see what follows device/{id}/. A shadow request is acknowledged once it is handled (stored
            // and answered), a command response once stored.
            var suffix = topic[device.DevicePrefix.Length..];
            if (shadowTopics.TryHandle(device.DeviceId, suffix, publish.Payload) is { } handled)
            {
                return MqttPublishDecision.AcceptWhen(handled);
            }

            return commandTopics.TryHandle(device.DeviceId, suffix, publish.Payload)
                ?? requestTopics.TryHandle(device, suffix, publish)
                ?? MqttPublishDecision.Accept;
        }

        if (!device.TelemetryToReported)
        {
            return telemetryIngest.TryIngest(device.DeviceId, publish.Payload, out var durable, out _)
                ? MqttPublishDecision.AcceptWhen(durable!)
                : MqttPublishDecision.Refuse(MqttReasonCode.PayloadFormatInvalid);
        }

        var points = new List<TelemetryPoint>();
        return telemetryIngest.TryIngest(device.DeviceId, publish.Payload, out var stored, out _, points)
            ? MqttPublishDecision.AcceptWhen(ReportAsync(device.DeviceId, stored!, points))
            : MqttPublishDecision.Refuse(MqttReasonCode.PayloadFormatInvalid);
    }

    // The device's telemetry, once durable, becomes its reported state: the latest value of each metric in the message.
    private async Task ReportAsync(string deviceId, Task stored, List<TelemetryPoint> points)
    {
        await stored.ConfigureAwait(false);
        var reported = new JsonObject();
        foreach (var point in points.OrderBy(p => p.TimestampMs))
        {
            reported[point.Metric] = point.Value;
        }

        await shadows.UpdateAsync(deviceId, new ShadowUpdate(null, reported), ShadowWriter.Device, expectedVersion: null, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task<DeviceIdentity> IdentityOfAsync(string deviceId, CancellationToken cancellationToken)
    {
        if (_telemetryToReported.Count == 0)
        {
            return new DeviceIdentity(deviceId);
        }

        var device = await deviceRegistry.GetAsync(deviceId, cancellationToken).ConfigureAwait(false);
        return new DeviceIdentity(deviceId) { TelemetryToReported = device is not null && _telemetryToReported.Contains(device.Type) };
    }

    public override void OnConnected(MqttClientContext client)
    {
        if (client.Identity is DeviceIdentity device)
        {
            connectionTracker.Connected(device.DeviceId);
            events.Publish(EventTypes.DeviceConnected, "mqtt", device.DeviceId, new JsonObject
            {
                ["device_id"] = device.DeviceId,
                ["client_id"] = client.ClientId,
                ["protocol"] = client.ProtocolVersion.ToString(),
            });
        }
    }

    public override void OnSubscribed(MqttClientContext client, IReadOnlyList<string> filters)
    {
        if (client.Identity is DeviceIdentity device)
        {
            shadowTopics.OnDeviceSubscribed(device.DeviceId, filters);
            commandTopics.OnDeviceSubscribed(device.DeviceId, filters);
        }
    }

    public override void OnDisconnected(MqttClientContext client, MqttDisconnectKind kind)
    {
        // A takeover is a reconnect: the new connection has already marked the device online.
        if (client.Identity is DeviceIdentity device && kind != MqttDisconnectKind.TakenOver)
        {
            connectionTracker.Disconnected(device.DeviceId);
            events.Publish(EventTypes.DeviceDisconnected, "mqtt", device.DeviceId, new JsonObject
            {
                ["device_id"] = device.DeviceId,
                ["reason"] = WireNames.Name(kind),
            });
        }
    }

    private static MqttReasonCode ToReasonCode(DeviceAuthenticationStatus status) => status switch
    {
        DeviceAuthenticationStatus.Success => MqttReasonCode.Success,
        DeviceAuthenticationStatus.NotAllowed => MqttReasonCode.NotAuthorized,
        DeviceAuthenticationStatus.Throttled => MqttReasonCode.ConnectionRateExceeded,
        _ => MqttReasonCode.BadUserNameOrPassword,
    };
    private async ValueTask<MqttReasonCode> AuthenticateAnonymousAsync(MqttClientContext client, ReadOnlyMemory<byte> password, CancellationToken cancellationToken)
    {
        // Devices and operators authenticate; a password without a user name (5.0 allows it) is not anonymous either.
        if (!_allowAnonymous || !password.IsEmpty)
        {
            return MqttReasonCode.NotAuthorized;
        }

        // A session belongs to the user name that made it: an anonymous client holding a device's client id would
        // lock that device out.
        if (await deviceRegistry.GetCredentialsAsync(client.ClientId, cancellationToken).ConfigureAwait(false) is not null)
        {
            return MqttReasonCode.ClientIdentifierNotValid;
        }

        client.Identity = AnonymousIdentity.Instance;
        return MqttReasonCode.Success;
    }

    /// <summary>The identity of the operator login.</summary>
    internal sealed class OperatorIdentity
    {
        public static readonly OperatorIdentity Instance = new();
    }

    /// <summary>The identity of a client let in without a user name (only with anonymous access on).</summary>
    internal sealed class AnonymousIdentity
    {
        public static readonly AnonymousIdentity Instance = new();
    }
}
