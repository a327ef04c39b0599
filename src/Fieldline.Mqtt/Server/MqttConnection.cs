using System.Buffers;
using System.IO.Pipelines;
using Fieldline.Mqtt.Protocol;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// One client connection: reads packets from the transport's pipe, handles them, and owns the client's output.
/// </summary>
/// <remarks>
/// Design note. Packets are parsed in place from the pipe's buffer and handled synchronously: a PUBLISH is
/// routed to subscribers while its bytes are still in the receive buffer, written straight into each
/// subscriber's output pipe. The read loop leaves its synchronous path only to authenticate, and to wait when
/// a downstream stage is behind: the store (acknowledgements waiting on <see cref="MqttPublishDecision.Completion"/>
/// beyond the receive window) or a subscriber whose output is backed up. Waiting instead of buffering is what
/// bounds memory: pressure travels back to the publisher's TCP window instead of into queues.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The connection's lifetime is RunAsync, which disposes what it owns at its end.")]
internal sealed partial class MqttConnection
{
    private readonly MqttBroker _broker;
    private readonly ConnectionContext _context;
    private readonly PipeReader _input;
    private readonly RoutingScratch _scratch = new();
    private byte[]? _bodyBuffer;
    private ITimer? _keepAliveTimer;
    private long _lastPacketTimestamp;
    private TimeSpan _keepAliveLimit;
    private int _closeRequested;
    private MqttDisconnectKind _closeKind = MqttDisconnectKind.ConnectionLost;
    private MqttApplicationMessage? _will;
    private bool _connected;
    private uint _connectSessionExpiry;
    private MqttConnection? _backedUpSubscriber;
    private ConnectionAdmission.Ticket? _admission;
    private readonly CancellationTokenSource _closing = new();
    private volatile bool _waitingDownstream;
    private uint _willDelaySeconds;
    private uint? _willExpirySeconds;
    private byte[]?[]? _inboundAliases;
    private byte[]? _propertiesScratch;
    private string? _authenticationMethod;

    public MqttConnection(MqttBroker broker, ConnectionContext context)
    {
        _broker = broker;
        _context = context;
        _input = context.Transport.Input;
        _output = context.Transport.Output;
        _onFlushCompleted = OnFlushCompleted;
    }

    public MqttClientContext? Client { get; private set; }

    public MqttSession? Session { get; private set; }

    public MqttProtocolVersion Version { get; private set; } = MqttProtocolVersion.V311;

    /// <summary>How many QoS 1 messages the client accepts unacknowledged (5.0 Receive Maximum).</summary>
    public ushort ClientReceiveMaximum { get; private set; } = ushort.MaxValue;

    private MqttBrokerOptions Options => _broker.Options;

    private string? RemoteAddress => _context.RemoteEndPoint?.ToString();

    public async Task RunAsync()
    {
        _broker.Register(this);
        try
        {
            if (await ReceiveConnectAsync().ConfigureAwait(false))
            {
                await ReadLoopAsync().ConfigureAwait(false);
            }
        }
        catch (MqttProtocolException ex)
        {
            _broker.Metrics.ProtocolError(ex.ReasonCode);
            Log.ProtocolError(_broker.Logger, _context.ConnectionId, RemoteAddress, ex.ReasonCode, ex.Message);
            Close(ex.ReasonCode, MqttDisconnectKind.ProtocolError, ex.Message);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException or ConnectionAbortedException or ObjectDisposedException)
        {
            // The peer went away or the server is stopping; the cleanup below is all there is to do.
        }
        catch (Exception ex)
        {
            Log.ConnectionFailed(_broker.Logger, _context.ConnectionId, ex);
            Close(MqttReasonCode.UnspecifiedError, MqttDisconnectKind.ServerInitiated);
        }
        finally
        {
            await CleanupAsync().ConfigureAwait(false);
            _broker.Unregister(this);
        }
    }

    /// <summary>
    /// Closes the connection from any thread: a 5.0 client is told why with DISCONNECT (3.1.1 has none), then the
    /// read loop stops and the output is completed once what was written has been sent.
    /// </summary>
    public void Close(MqttReasonCode reason, MqttDisconnectKind kind, string? reasonString = null)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) == 1)
        {
            return;
        }

        _closeKind = kind;
        if (Version == MqttProtocolVersion.V500 && _connected && reason != MqttReasonCode.Success)
        {
            WriteDisconnect(reason, reasonString);
        }

        _input.CancelPendingRead();
        try
        {
            // Ends a wait for the store or for a subscriber, so that a closed connection never hangs there.
            _closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already cleaned up.
        }
    }

    private async Task<bool> ReceiveConnectAsync()
    {
        // Not ConnectionClosed: Kestrel raises it as soon as the client's FIN is read, and a client that sends its
        // CONNECT, its messages and a FIN in one go (mosquitto_pub -l at end of input) would lose them all to a read
        // cancelled with its data in the buffer. A closed input ends the read loop once its frames are handled.
        using var timeout = new CancellationTokenSource(Options.ConnectTimeout, _broker.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _broker.Stopping);
        MqttConnectPacket? connect;
        bool unsupportedVersion;
        while (true)
        {
            var result = await _input.ReadAsync(linked.Token).ConfigureAwait(false);
            var buffer = result.Buffer;
            var status = MqttFrameReader.TryReadFrame(buffer, Options.MaximumPacketSize, out var frame, out var consumed, out var examined);
            if (status == MqttFrameStatus.Complete)
            {
                try
                {
                    if (frame.Type != MqttPacketType.Connect)
                    {
                        throw MqttProtocolException.Protocol("The first packet must be CONNECT.");
                    }

                    _broker.Metrics.PacketReceived((int)buffer.Slice(0, consumed).Length);
                    connect = MqttConnectPacket.Decode(frame.Flags, GetBody(frame.Body).Span, out unsupportedVersion);
                }
                finally
                {
                    _input.AdvanceTo(consumed);
                }

                break;
            }

            _input.AdvanceTo(buffer.Start, examined);
            if (status != MqttFrameStatus.Incomplete)
            {
                throw new MqttProtocolException(status == MqttFrameStatus.TooLarge ? MqttReasonCode.PacketTooLarge : MqttReasonCode.MalformedPacket, "Invalid CONNECT frame.");
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return false;
            }
        }

        if (unsupportedVersion || connect is null)
        {
            _broker.Metrics.ConnectRefused(MqttReasonCode.UnsupportedProtocolVersion);
            WriteConnAck(false, MqttReasonCode.UnsupportedProtocolVersion, null);
            return false;
        }

        Version = connect.ProtocolVersion;
        ClientReceiveMaximum = connect.ReceiveMaximum;
        _clientMaximumPacketSize = connect.MaximumPacketSize;
        _outboundAliasLimit = Math.Min(connect.TopicAliasMaximum, Options.OutboundTopicAliasMaximum);
        if (_outboundAliasLimit > 0)
        {
            _outboundAliases = new Dictionary<byte[], ushort>(Topics.ByteArrayComparer.Instance);
        }
        string? assignedClientId = null;
        var clientId = connect.ClientId;
        if (clientId.Length == 0)
        {
            if (Version == MqttProtocolVersion.V311 && !connect.CleanStart)
            {
                return RefuseConnect(clientId, MqttReasonCode.ClientIdentifierNotValid);
            }

            clientId = _broker.AssignClientId();
            if (Version == MqttProtocolVersion.V500)
            {
                assignedClientId = clientId;
            }
        }

        _admission = _broker.Admission.TryAdmit(_context.RemoteEndPoint, out var refusal);
        if (_admission is null)
        {
            return RefuseConnect(clientId, refusal);
        }

        if (connect.Will is { } longWill && !_broker.Limits.AllowsTopicName(longWill.TopicUtf8))
        {
            return RefuseConnect(clientId, MqttReasonCode.TopicNameInvalid);
        }

        Client = new MqttClientContext(clientId, connect.Username, Version, _context.RemoteEndPoint, _context.ConnectionId)
        {
            ClientCertificate = _context.Features.Get<ITlsConnectionFeature>()?.ClientCertificate,
        };
        var reason = connect.AuthenticationMethod is { } method
            ? await AuthenticateExchangeAsync(method, connect.AuthenticationData, linked.Token).ConfigureAwait(false)
            : await _broker.Policy.AuthenticateAsync(Client, connect.Password, linked.Token).ConfigureAwait(false);
        if (reason != MqttReasonCode.Success)
        {
            return RefuseConnect(clientId, reason);
        }

        // The last will is published by the broker on the client's behalf, so it must pass the same rule as
        // the client's own publishes; otherwise a will could reach topics the client may not.
        if (connect.Will is { } will && !_broker.Policy.CanPublish(Client, will.TopicUtf8))
        {
            _broker.Metrics.AuthorizationDenied("will");
            return RefuseConnect(clientId, MqttReasonCode.NotAuthorized);
        }

        _connectSessionExpiry = Version == MqttProtocolVersion.V500
            ? connect.SessionExpirySeconds
            : connect.CleanStart ? 0 : uint.MaxValue;

        var keepAlive = connect.KeepAliveSeconds;
        ushort serverKeepAlive = 0;
        if (Options.MaximumKeepAliveSeconds > 0 && (keepAlive == 0 || keepAlive > Options.MaximumKeepAliveSeconds))
        {
            keepAlive = serverKeepAlive = Options.MaximumKeepAliveSeconds;
        }

        // CONNACK is written inside the attach, before the session points at this connection: no routed
        // PUBLISH can overtake it (MQTT-3.2.0-1), and what the session resends follows it in order.
        var attached = _broker.AttachSession(
            this,
            clientId,
            Client.SessionOwner,
            connect.CleanStart,
            _connectSessionExpiry,
            sessionPresent => WriteConnAck(sessionPresent, MqttReasonCode.Success, assignedClientId, Version == MqttProtocolVersion.V500 ? serverKeepAlive : (ushort)0),
            out var sessionPresent);
        if (attached is null)
        {
            // The client id belongs to a session of another user: taking it over would hand over its messages.
            return RefuseConnect(clientId, MqttReasonCode.NotAuthorized);
        }

        Session = attached;
        _will = connect.Will;
        _willDelaySeconds = connect.WillDelaySeconds;
        _willExpirySeconds = connect.WillMessageExpirySeconds;
        _connected = true;
        StartKeepAlive(keepAlive);
        Log.ClientConnected(_broker.Logger, clientId, RemoteAddress, Version, sessionPresent);
        _broker.Policy.OnConnected(Client);
        return true;
    }

    /// <summary>
    /// Runs an enhanced authentication exchange (4.12): the policy answers each step, and while it asks to
    /// continue, its challenge goes out in AUTH 0x18 and the client's next packet must be AUTH 0x18 with the
    /// same method.
    /// </summary>
    private async Task<MqttReasonCode> AuthenticateExchangeAsync(string method, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (Version != MqttProtocolVersion.V500)
        {
            return MqttReasonCode.BadAuthenticationMethod;
        }

        _authenticationMethod = method;
        while (true)
        {
            var step = await _broker.Policy.AuthenticateExchangeAsync(Client!, method, data, cancellationToken).ConfigureAwait(false);
            if (step.ReasonCode != MqttReasonCode.ContinueAuthentication)
            {
                return step.ReasonCode;
            }

            WriteAuth(MqttReasonCode.ContinueAuthentication, method, step.Data);
            var auth = await ReadAuthDuringConnectAsync(cancellationToken).ConfigureAwait(false);
            if (auth.Reason != MqttReasonCode.ContinueAuthentication || !string.Equals(auth.Method, method, StringComparison.Ordinal))
            {
                throw MqttProtocolException.Protocol("AUTH during CONNECT must continue the same method.");
            }

            data = auth.Data;
        }
    }

    private async Task<MqttAuthPacket> ReadAuthDuringConnectAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var status = MqttFrameReader.TryReadFrame(buffer, Options.MaximumPacketSize, out var frame, out var consumed, out var examined);
            if (status == MqttFrameStatus.Complete)
            {
                try
                {
                    if (frame.Type != MqttPacketType.Auth)
                    {
                        throw MqttProtocolException.Protocol("Only AUTH may follow CONNECT before CONNACK.");
                    }

                    _broker.Metrics.PacketReceived((int)buffer.Slice(0, consumed).Length);
                    return MqttPacketDecoder.DecodeAuth(frame.Flags, GetBody(frame.Body).Span);
                }
                finally
                {
                    _input.AdvanceTo(consumed);
                }
            }

            _input.AdvanceTo(buffer.Start, examined);
            if (status != MqttFrameStatus.Incomplete)
            {
                throw new MqttProtocolException(status == MqttFrameStatus.TooLarge ? MqttReasonCode.PacketTooLarge : MqttReasonCode.MalformedPacket, "Invalid AUTH frame.");
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                throw new ConnectionAbortedException("The client left during authentication.");
            }
        }
    }

    private bool RefuseConnect(string clientId, MqttReasonCode reason)
    {
        _broker.Metrics.ConnectRefused(reason);
        Log.ConnectRefused(_broker.Logger, RemoteAddress, clientId, reason);
        WriteConnAck(false, reason, null);
        return false;
    }

    private async Task ReadLoopAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync(_broker.Stopping).ConfigureAwait(false);
            if (Volatile.Read(ref _closeRequested) == 1)
            {
                _input.AdvanceTo(result.Buffer.Start);
                return;
            }

            var buffer = result.Buffer;
            var examined = buffer.End;
            var mustWait = false;
            try
            {
                while (true)
                {
                    var status = MqttFrameReader.TryReadFrame(buffer, Options.MaximumPacketSize, out var frame, out var consumed, out _);
                    if (status == MqttFrameStatus.Incomplete)
                    {
                        break;
                    }

                    if (status != MqttFrameStatus.Complete)
                    {
                        throw new MqttProtocolException(status == MqttFrameStatus.TooLarge ? MqttReasonCode.PacketTooLarge : MqttReasonCode.MalformedPacket, status == MqttFrameStatus.TooLarge ? "Packet exceeds the maximum packet size." : "Invalid remaining length.");
                    }

                    _lastPacketTimestamp = _broker.TimeProvider.GetTimestamp();
                    var keepReading = HandlePacket(frame, (int)buffer.Slice(0, consumed).Length);
                    buffer = buffer.Slice(consumed);
                    if (!keepReading)
                    {
                        return;
                    }

                    if (_backedUpSubscriber is not null || PendingAcknowledgements >= Options.ReceiveMaximum)
                    {
                        mustWait = true;
                        examined = buffer.Start;
                        break;
                    }
                }
            }
            finally
            {
                _input.AdvanceTo(buffer.Start, examined);
            }

            if (mustWait)
            {
                await WaitForDownstreamAsync().ConfigureAwait(false);
            }

            // A completed input still holds the frames left unread while we waited downstream: read them first.
            if (result.IsCompleted && !mustWait)
            {
                return;
            }
        }
    }

    private async Task WaitForDownstreamAsync()
    {
        // While the broker holds this client back, the client's PINGREQs wait unread in the socket: the
        // keep-alive is suspended, and counts again from the end of the wait.
        _waitingDownstream = true;
        try
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(_broker.Stopping, _closing.Token);
            if (_backedUpSubscriber is { } subscriber)
            {
                // This client itself counts too: one that publishes to its own subscription and never reads
                // would otherwise grow its output without bound.
                _backedUpSubscriber = null;
                _broker.Metrics.BackpressureWait();
                var drained = subscriber.WhenDrained();
                try
                {
                    await drained.WaitAsync(Options.SlowConsumerTimeout, _broker.TimeProvider, wait.Token).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    Log.SlowConsumer(_broker.Logger, subscriber.Client?.ClientId ?? "?", Options.SlowConsumerTimeout);
                    _broker.Metrics.Dropped("slow_consumer");
                    subscriber.Close(MqttReasonCode.QuotaExceeded, MqttDisconnectKind.SlowConsumer);
                }
            }

            while (PendingAcknowledgements >= Options.ReceiveMaximum && Volatile.Read(ref _closeRequested) == 0)
            {
                await WhenAcknowledgementsProgress().WaitAsync(wait.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            Volatile.Write(ref _lastPacketTimestamp, _broker.TimeProvider.GetTimestamp());
            _waitingDownstream = false;
        }
    }

    private void StartKeepAlive(ushort keepAliveSeconds)
    {
        _lastPacketTimestamp = _broker.TimeProvider.GetTimestamp();
        if (keepAliveSeconds == 0)
        {
            return;
        }

        // MQTT-3.1.2-24: close when nothing arrives within one and a half times the keep-alive.
        _keepAliveLimit = TimeSpan.FromSeconds(keepAliveSeconds * 1.5);
        var period = TimeSpan.FromSeconds(Math.Max(1, keepAliveSeconds / 4.0));
        _keepAliveTimer = _broker.TimeProvider.CreateTimer(_ => CheckKeepAlive(), null, period, period);
    }

    private void CheckKeepAlive()
    {
        if (!_waitingDownstream && _broker.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastPacketTimestamp)) > _keepAliveLimit)
        {
            Close(MqttReasonCode.KeepAliveTimeout, MqttDisconnectKind.KeepAliveTimeout);
        }
    }

    private ReadOnlyMemory<byte> GetBody(in ReadOnlySequence<byte> body)
    {
        if (body.IsSingleSegment)
        {
            return body.First;
        }

        // A packet spanning pipe segments is copied once into a pooled buffer kept for the connection.
        var length = (int)body.Length;
        if (_bodyBuffer is null || _bodyBuffer.Length < length)
        {
            if (_bodyBuffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_bodyBuffer);
            }

            _bodyBuffer = ArrayPool<byte>.Shared.Rent(length);
        }

        body.CopyTo(_bodyBuffer);
        return _bodyBuffer.AsMemory(0, length);
    }

    private async Task CleanupAsync()
    {
        Interlocked.Exchange(ref _closeRequested, 1);
        if (_keepAliveTimer is not null)
        {
            await _keepAliveTimer.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            if (Session is not null && Client is not null)
            {
                var kind = _closeKind;
                if (!_broker.DetachSession(this, Session))
                {
                    // Another connection holds the session now, whatever ended this one: it is a takeover, and the
                    // device is not offline.
                    kind = MqttDisconnectKind.TakenOver;
                }

                if (_will is { } will && kind is not MqttDisconnectKind.Clean)
                {
                    // The last will goes out on any end but a normal DISCONNECT (MQTT-3.1.2-8, -10), a takeover
                    // included (3.1.4-3), after its Will Delay Interval unless the session is resumed first.
                    _broker.PublishWill(Session, will, _willDelaySeconds, _willExpirySeconds);
                }

                Log.ClientDisconnected(_broker.Logger, Client.ClientId, kind);
                _broker.Policy.OnDisconnected(Client, kind);
            }
        }
        catch (Exception ex)
        {
            // The connection's resources below are released whatever failed above.
            Log.ConnectionFailed(_broker.Logger, _context.ConnectionId, ex);
        }

        _admission?.Release();
        CloseOutput();
        await _output.CompleteAsync().ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
        if (_bodyBuffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_bodyBuffer);
            _bodyBuffer = null;
        }

        _closing.Dispose();
    }
}
