using System.Net;
using System.Text;
using Fieldline.Core.Devices;
using Fieldline.Core.Security;
using Fieldline.Core.Telemetry;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;

namespace Fieldline.Broker;

/// <summary>
/// The platform's rules for the broker: devices log in with their id and token (or, over TLS, with a client
/// certificate registered to them or issued by a configured CA for their id) and reach only their own topics; telemetry published on <c>sensor/{id}/telemetry</c> is acknowledged once it is durable; an operator
/// logs in as <c>$admin</c> with the admin API key and may subscribe to anything (device ids cannot start with
/// '$', so the name cannot collide with a device).
/// </summary>
internal sealed class FieldlineMqttPolicy(
    DeviceAuthenticator deviceAuthenticator,
    IAdminKeyVerifier adminKeyVerifier,
    TelemetryIngest telemetryIngest,
    DeviceConnectionTracker connectionTracker,
    TimeProvider timeProvider) : MqttBrokerPolicy
{
    private readonly FailedAttemptLimiter _operatorFailures = new(maxFailures: 10, TimeSpan.FromMinutes(1), timeProvider);

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
                client.Identity = new DeviceIdentity(deviceId);

                // Without a user name the session would belong to nobody, and any other certificate could take it over.
                client.SessionOwner = deviceId;
                return MqttReasonCode.Success;
            }

            return ToReasonCode(authentication.Status);
        }

        if (string.IsNullOrEmpty(username))
        {
            // Anonymous clients are not let in: devices and operators both authenticate.
            return MqttReasonCode.NotAuthorized;
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

        var status = await deviceAuthenticator.AuthenticateAsync(username, password, source, cancellationToken).ConfigureAwait(false);
        if (status == DeviceAuthenticationStatus.Success)
        {
            client.Identity = new DeviceIdentity(username);
        }

        return ToReasonCode(status);
    }

    public override bool CanPublish(MqttClientContext client, ReadOnlySpan<byte> topic) => client.Identity switch
    {
        DeviceIdentity device => DeviceTopics.MayPublish(device, topic),
        OperatorIdentity => topic.IsEmpty || topic[0] != '$',
        _ => false,
    };

    public override bool CanSubscribe(MqttClientContext client, string filter) => client.Identity switch
    {
        DeviceIdentity device => DeviceTopics.MaySubscribe(device, Encoding.UTF8.GetBytes(filter)),
        OperatorIdentity => true,
        _ => false,
    };

    public override MqttPublishDecision OnPublish(MqttClientContext client, in MqttInboundPublish publish)
    {
        if (client.Identity is not DeviceIdentity device || !publish.TopicUtf8.Span.SequenceEqual(device.TelemetryTopic))
        {
            return MqttPublishDecision.Accept;
        }

        return telemetryIngest.TryIngest(device.DeviceId, publish.Payload, out var durable, out _)
            ? MqttPublishDecision.AcceptWhen(durable!)
            : MqttPublishDecision.Refuse(MqttReasonCode.PayloadFormatInvalid);
    }

    public override void OnConnected(MqttClientContext client)
    {
        if (client.Identity is DeviceIdentity device)
        {
            connectionTracker.Connected(device.DeviceId);
        }
    }

    public override void OnDisconnected(MqttClientContext client, MqttDisconnectKind kind)
    {
        // A takeover is a reconnect: the new connection has already marked the device online.
        if (client.Identity is DeviceIdentity device && kind != MqttDisconnectKind.TakenOver)
        {
            connectionTracker.Disconnected(device.DeviceId);
        }
    }

    private static MqttReasonCode ToReasonCode(DeviceAuthenticationStatus status) => status switch
    {
        DeviceAuthenticationStatus.Success => MqttReasonCode.Success,
        DeviceAuthenticationStatus.NotAllowed => MqttReasonCode.NotAuthorized,
        DeviceAuthenticationStatus.Throttled => MqttReasonCode.ConnectionRateExceeded,
        _ => MqttReasonCode.BadUserNameOrPassword,
    };

    /// <summary>The identity of the operator login.</summary>
    internal sealed class OperatorIdentity
    {
        public static readonly OperatorIdentity Instance = new();
    }
}
