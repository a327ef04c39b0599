using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Fieldline.Mqtt.Server;

/// <summary>A connected client as the broker's policy sees it.</summary>
public sealed class MqttClientContext
{
    internal MqttClientContext(string clientId, string? username, MqttProtocolVersion protocolVersion, EndPoint? remoteEndPoint, string connectionId)
    {
        ClientId = clientId;
        Username = username;
        ProtocolVersion = protocolVersion;
        RemoteEndPoint = remoteEndPoint;
        ConnectionId = connectionId;
    }

    /// <summary>The client identifier (assigned by the broker when the client sent none).</summary>
    public string ClientId { get; internal set; }

    /// <summary>The user name of CONNECT, if any.</summary>
    public string? Username { get; }

    /// <summary>The protocol level the client connected with.</summary>
    public MqttProtocolVersion ProtocolVersion { get; }

    /// <summary>The client's address.</summary>
    public EndPoint? RemoteEndPoint { get; }

    /// <summary>The transport connection's id (Kestrel's).</summary>
    public string ConnectionId { get; }

    /// <summary>Whatever the policy attached when it authenticated the client (for example the device it is).</summary>
    public object? Identity { get; set; }

    /// <summary>The certificate the client presented in the TLS handshake; null without TLS or without a certificate.</summary>
    public X509Certificate2? ClientCertificate { get; internal init; }

    /// <summary>
    /// Who owns the client's session: only a client with the same owner may resume or take it over. The user name
    /// unless the policy sets it while authenticating (for example to the device a certificate identifies).
    /// </summary>
    public string? SessionOwner
    {
        get => _sessionOwner ?? Username;
        set => _sessionOwner = value;
    }

    private string? _sessionOwner;
}

/// <summary>Why a client's connection ended.</summary>
public enum MqttDisconnectKind
{
    /// <summary>The client sent DISCONNECT.</summary>
    Clean,

    /// <summary>The client sent DISCONNECT asking for its will to be published (5.0 reason 0x04).</summary>
    CleanWithWill,

    /// <summary>Nothing arrived within 1.5 times the keep-alive.</summary>
    KeepAliveTimeout,

    /// <summary>The client broke the protocol.</summary>
    ProtocolError,

    /// <summary>Another connection took over the client id.</summary>
    TakenOver,

    /// <summary>The network connection closed without DISCONNECT.</summary>
    ConnectionLost,

    /// <summary>The client did not read what it was sent for too long.</summary>
    SlowConsumer,

    /// <summary>The broker (or the platform through it) closed the connection.</summary>
    ServerInitiated,
}

/// <summary>
/// What the broker does with an authorized PUBLISH: accept it (optionally only once <see cref="Completion"/>
/// has finished, for example when the message is durably stored) or refuse it with a reason code.
/// </summary>
public readonly struct MqttPublishDecision
{
    private MqttPublishDecision(MqttReasonCode reasonCode, Task? completion)
    {
        ReasonCode = reasonCode;
        Completion = completion;
    }

    /// <summary>Accept and route now; acknowledge now.</summary>
    public static MqttPublishDecision Accept => default;

    /// <summary>Success, or the reason the message was refused.</summary>
    public MqttReasonCode ReasonCode { get; }

    /// <summary>
    /// When set, the acknowledgement (PUBACK/PUBREC) waits for this task, and the connection reads no further
    /// than its in-flight window ahead of it: that is how a slow store slows down the device.
    /// A faulted task means the message was not accepted.
    /// </summary>
    public Task? Completion { get; }

    /// <summary>Route now; acknowledge when <paramref name="completion"/> has completed successfully.</summary>
    public static MqttPublishDecision AcceptWhen(Task completion) => new(MqttReasonCode.Success, completion);

    /// <summary>Refuse: not routed; 5.0 clients get the reason code in PUBACK.</summary>
    public static MqttPublishDecision Refuse(MqttReasonCode reasonCode) => new(reasonCode, null);
}

/// <summary>The policy's answer to one filter of a SUBSCRIBE.</summary>
public enum MqttSubscribeAuthorization
{
    /// <summary>Refused: SUBACK 0x87 Not authorized (3.1.1: 0x80).</summary>
    Denied,

    /// <summary>Granted: every message matching the filter is delivered.</summary>
    Granted,

    /// <summary>
    /// Granted, but each message is delivered only if <see cref="MqttBrokerPolicy.CanReceive"/> allows its topic: for a
    /// filter such as '#' that may match topics the client must not read among many it may. A shared subscription
    /// cannot be granted so (its messages go to one member each) and is refused instead.
    /// </summary>
    GrantedWithDeliveryCheck,
}

/// <summary>
/// The hooks through which an application decides who may connect, publish and subscribe, and observes
/// clients. The default allows everything except publishing to '$' topics.
/// </summary>
public class MqttBrokerPolicy
{
    /// <summary>A policy that lets every client in.</summary>
    public static MqttBrokerPolicy AllowAll { get; } = new();

    /// <summary>Authenticates a CONNECT; <see cref="MqttReasonCode.Success"/> lets the client in.</summary>
    public virtual ValueTask<MqttReasonCode> AuthenticateAsync(MqttClientContext client, ReadOnlyMemory<byte> password, CancellationToken cancellationToken) =>
        ValueTask.FromResult(MqttReasonCode.Success);

    /// <summary>
    /// One step of MQTT 5.0 enhanced authentication (CONNECT or AUTH with an Authentication Method, 4.12): called
    /// with the client's authentication data, it answers with data to send back and wait for more
    /// (<see cref="MqttAuthenticationStep.Continue"/>), success, or failure. A successful exchange replaces
    /// <see cref="AuthenticateAsync"/>. The default knows no method, so clients hear 0x8C Bad authentication method.
    /// </summary>
    public virtual ValueTask<MqttAuthenticationStep> AuthenticateExchangeAsync(MqttClientContext client, string method, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        ValueTask.FromResult(MqttAuthenticationStep.Fail(MqttReasonCode.BadAuthenticationMethod));

    /// <summary>Whether the client may publish to <paramref name="topic"/>. Called for every PUBLISH: must not allocate.</summary>
    public virtual bool CanPublish(MqttClientContext client, ReadOnlySpan<byte> topic) => topic.IsEmpty || topic[0] != '$';

    /// <summary>Whether the client may subscribe to <paramref name="filter"/>.</summary>
    public virtual bool CanSubscribe(MqttClientContext client, string filter) => true;

    /// <summary>
    /// Decides one filter of a SUBSCRIBE (of a shared subscription, the filter without its <c>$share/{group}/</c>);
    /// the default grants it when <see cref="CanSubscribe"/> allows it.
    /// </summary>
    public virtual MqttSubscribeAuthorization AuthorizeSubscribe(MqttClientContext client, string filter) =>
        CanSubscribe(client, filter) ? MqttSubscribeAuthorization.Granted : MqttSubscribeAuthorization.Denied;

    /// <summary>
    /// Whether a message on <paramref name="topic"/> may be delivered to the client through a subscription granted
    /// with <see cref="MqttSubscribeAuthorization.GrantedWithDeliveryCheck"/> (routed and retained messages alike).
    /// Called for every such delivery: must not allocate.
    /// </summary>
    public virtual bool CanReceive(MqttClientContext client, ReadOnlySpan<byte> topic) => true;

    /// <summary>
    /// Decides a subscription of a session read back from the state store at start, before its client reconnects.
    /// <paramref name="owner"/> has the session's client id and owner as <see cref="MqttClientContext.Username"/>,
    /// and no identity: the policy may attach one for <see cref="CanReceive"/>. Denied drops the subscription. The
    /// default keeps it as it was granted (a delivery check is not stored, so a policy that grants with one must say so again here).
    /// </summary>
    public virtual MqttSubscribeAuthorization AuthorizeRestoredSubscription(MqttClientContext owner, string filter) =>
        MqttSubscribeAuthorization.Granted;

    /// <summary>Inspects an authorized PUBLISH before it is routed. Called for every PUBLISH: must not block.</summary>
    public virtual MqttPublishDecision OnPublish(MqttClientContext client, in MqttInboundPublish publish) => MqttPublishDecision.Accept;

    /// <summary>The client is connected (CONNACK sent).</summary>
    public virtual void OnConnected(MqttClientContext client)
    {
    }

    /// <summary>
    /// Subscriptions were granted: called after the SUBACK and the retained messages were written, so that a message
    /// the server publishes now reaches the new subscriptions. <paramref name="filters"/> are the filters granted
    /// (with any <c>$share/{group}/</c> prefix). Must not block.
    /// </summary>
    public virtual void OnSubscribed(MqttClientContext client, IReadOnlyList<string> filters)
    {
    }

    /// <summary>The client's connection ended.</summary>
    public virtual void OnDisconnected(MqttClientContext client, MqttDisconnectKind kind)
    {
    }
}

/// <summary>The answer of a policy to one step of enhanced authentication.</summary>
public readonly struct MqttAuthenticationStep
{
    private MqttAuthenticationStep(MqttReasonCode reasonCode, byte[]? data)
    {
        ReasonCode = reasonCode;
        Data = data;
    }

    /// <summary>Success, Continue authentication, or the failure reason.</summary>
    public MqttReasonCode ReasonCode { get; }

    /// <summary>Authentication data to send to the client (challenge, or final server proof).</summary>
    public byte[]? Data { get; }

    /// <summary>Send <paramref name="challenge"/> in AUTH (0x18) and wait for the client's answer.</summary>
    public static MqttAuthenticationStep Continue(byte[] challenge) => new(MqttReasonCode.ContinueAuthentication, challenge);

    /// <summary>The client is authenticated.</summary>
    public static MqttAuthenticationStep Succeed(byte[]? data = null) => new(MqttReasonCode.Success, data);

    /// <summary>The client is refused with <paramref name="reasonCode"/>.</summary>
    public static MqttAuthenticationStep Fail(MqttReasonCode reasonCode) => new(reasonCode, null);
}
