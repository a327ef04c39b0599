using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Fieldline.Coap.Protocol;
using Microsoft.Extensions.Logging;

namespace Fieldline.Coap.Server;

/// <summary>
/// A CoAP server over UDP (RFC 7252): routes requests to <see cref="CoapResource"/>s by path, answers Confirmable
/// requests piggybacked on the ACK (or with an empty ACK first and a separate response when the resource is slow),
/// and recognises retransmissions by message id so that a resource runs once per request. It lists its resources at
/// <c>/.well-known/core</c> (RFC 6690).
/// </summary>
/// <remarks>
/// Design note. Nothing a peer sends can take the server down: a malformed Confirmable message gets a Reset (§4.2),
/// anything else malformed is dropped (§4.3), and a resource that throws answers 5.00. Exchanges are keyed by the
/// peer's endpoint and message id and kept for <see cref="CoapServerOptions.ExchangeLifetime"/> with the response
/// that was sent, which a retransmitted request gets again.
/// </remarks>
public sealed partial class CoapServer : IAsyncDisposable
{
    private readonly CoapServerOptions _options;
    private readonly IReadOnlyList<CoapResource> _resources;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Socket _socket;
    private readonly ConcurrentDictionary<ExchangeKey, Exchange> _exchanges = new();
    private readonly Queue<(ExchangeKey Key, Exchange Exchange)> _exchangesByAge = new(); // receive loop only
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConfirmableTransmissions _confirmables;
    private readonly CoapObservers _observers = new();
    private readonly Block1Assembler _block1;
    private int _observeSequence;
    private long _messagesReceived;
    private long _messagesSent;
    private Task _receiving = Task.CompletedTask;
    private int _nextMessageId = Random.Shared.Next(ushort.MaxValue);

    public CoapServer(CoapServerOptions options, IEnumerable<CoapResource> resources, TimeProvider timeProvider, ILogger<CoapServer> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        List<CoapResource> all = [.. resources];
        all.Add(new WellKnownCoreResource(all));
        _resources = all;
        foreach (var resource in all)
        {
            resource.Changed += OnResourceChanged;
        }

        _timeProvider = timeProvider;
        _logger = logger;
        _confirmables = new ConfirmableTransmissions(new TransmissionParameters(options.AckTimeout, options.AckRandomFactor, options.MaxRetransmit), timeProvider, Send);
        _block1 = new Block1Assembler(options, timeProvider);
        _socket = new Socket(options.Address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        if (options.Address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            _socket.DualMode = true;
        }
    }

    /// <summary>How many observations are registered (RFC 7641).</summary>
    public int ObserverCount => _observers.Count;

    /// <summary>How many datagrams the server has received (requests, acknowledgements, resets, malformed ones).</summary>
    public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

    /// <summary>How many datagrams the server has sent (responses, notifications, retransmissions, empty messages).</summary>
    public long MessagesSent => Interlocked.Read(ref _messagesSent);

    /// <summary>Where the server listens once started.</summary>
    public IPEndPoint? LocalEndPoint => _socket.LocalEndPoint as IPEndPoint;

    /// <summary>Binds the socket and starts receiving.</summary>
    public void Start()
    {
        _socket.Bind(new IPEndPoint(_options.Address, _options.Port));
        _receiving = Task.Run(ReceiveLoopAsync);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        foreach (var resource in _resources)
        {
            resource.Changed -= OnResourceChanged;
        }

        _confirmables.Clear();
        _socket.Dispose();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        // One byte more than the largest message: a datagram that fills it is too large.
        var buffer = new byte[_options.MaximumMessageSize + 1];
        EndPoint any = new IPEndPoint(_options.Address, 0);
        while (!_stopping.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue; // an ICMP port unreachable of an earlier send, or a datagram larger than the buffer
            }

            Interlocked.Increment(ref _messagesReceived);
            try
            {
                OnDatagram(buffer.AsSpan(0, received.ReceivedBytes), (IPEndPoint)received.RemoteEndPoint);
            }
            catch (Exception e)
            {
                LogDatagramFailed(e);
            }

            SweepExchanges();
        }
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        var error = CoapMessageView.TryParse(datagram, out var message);
        if (error != CoapFormatError.None)
        {
            // §4.2: a Confirmable message that cannot be processed is rejected with a Reset; §3: a wrong version is ignored.
            if (message.HasHeader && message.Type == CoapMessageType.Confirmable && error != CoapFormatError.UnsupportedVersion)
            {
                SendEmpty(CoapMessageType.Reset, message.MessageId, remote);
            }

            return;
        }

        if (message.Type is CoapMessageType.Acknowledgement or CoapMessageType.Reset)
        {
            var reset = message.Type == CoapMessageType.Reset;
            _confirmables.OnAnswer(remote, message.MessageId, reset);
            if (reset)
            {
                _observers.OnReset(remote, message.MessageId); // a Reset to a notification ends the observation
            }

            return;
        }

        if (!message.Code.IsRequest)
        {
            // A Confirmable empty message is a CoAP ping (§4.3), answered with a Reset like a response we never asked for.
            if (message.Type == CoapMessageType.Confirmable)
            {
                SendEmpty(CoapMessageType.Reset, message.MessageId, remote);
            }

            return;
        }

        var key = new ExchangeKey(remote, message.MessageId);
        var exchange = new Exchange(_timeProvider.GetTimestamp());
        if (!_exchanges.TryAdd(key, exchange))
        {
            // A retransmission (§4.5): the same answer again once there is one; the resource does not run twice.
            if (_exchanges.TryGetValue(key, out var seen) && seen.Response is { } sent)
            {
                Send(sent, remote);
            }

            return;
        }

        _exchangesByAge.Enqueue((key, exchange));

        if (datagram.Length > _options.MaximumMessageSize)
        {
            Respond(message.Type, message.MessageId, message.Token, remote, exchange, CoapResponse.Text(
                CoapCode.RequestEntityTooLarge, $"A request may be at most {_options.MaximumMessageSize} bytes; use Block1 for more."), separate: false);
            return;
        }

        var request = new CoapRequest(message, remote);
        _ = HandleAsync(request, exchange);
    }

    private async Task HandleAsync(CoapRequest request, Exchange exchange)
    {
        var handling = DispatchAsync(request).AsTask();
        var separate = false;
        if (request.Type == CoapMessageType.Confirmable && !handling.IsCompleted)
        {
            try
            {
                await handling.WaitAsync(_options.SeparateResponseDelay, _timeProvider, _stopping.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Acknowledge now so that the client stops retransmitting; the response follows on its own (§5.2.2).
                exchange.Response = SendEmpty(CoapMessageType.Acknowledgement, request.MessageId, request.Remote);
                separate = true;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var response = await handling.ConfigureAwait(false);
        Respond(request.Type, request.MessageId, request.Token, request.Remote, exchange, response, separate);
    }

    private async ValueTask<CoapResponse> DispatchAsync(CoapRequest request)
    {
        foreach (var (number, value) in request.Options)
        {
            if (number is CoapOptionNumber.ProxyUri or CoapOptionNumber.ProxyScheme)
            {
                return CoapResponse.Text(new CoapCode(5, 5), "This server is no proxy.");
            }

            var known = CoapOptionNumber.TryGetLengthRange(number, out var minimum, out var maximum);
            if (CoapOptionNumber.IsCritical(number) && (!known || value.Length < minimum || value.Length > maximum))
            {
                return CoapResponse.Text(CoapCode.BadOption, $"Option {number} is not understood or has a bad length.");
            }
        }

        CoapResource? found = null;
        foreach (var resource in _resources)
        {
            if (!resource.Matches(request.Path))
            {
                continue;
            }

            found ??= resource;
            if (resource.Methods.Contains(request.Method))
            {
                if (request.ContentFormat is { } format && request.Payload.Length > 0
                    && resource.AcceptedContentFormats is { } accepted && !accepted.Contains(format))
                {
                    return CoapResponse.Text(CoapCode.UnsupportedContentFormat, $"Content-Format {format} is not accepted here; use one of {string.Join(", ", accepted)}.");
                }

                try
                {
                    byte[]? block1 = null;
                    if (_block1.Accept(request) is { } assembled)
                    {
                        if (assembled.Answer is { } answer)
                        {
                            return answer; // 2.31 Continue, or why the blocks were refused
                        }

                        (request, block1) = (assembled.Whole!, assembled.Echo);
                    }

                    var response = InBlocks(request, Observe(resource, request, await resource.HandleAsync(request, _stopping.Token).ConfigureAwait(false)));
                    return block1 is null ? response : response with
                    {
                        Options = [.. response.Options.Append((Number: CoapOptionNumber.Block1, Value: block1)).OrderBy(o => o.Number)],
                    };
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stopping.IsCancellationRequested)
                {
                    LogResourceFailed(e, resource.Template);
                    return CoapResponse.Text(CoapCode.InternalServerError, "The request failed on the server.");
                }
            }
        }

        return found is null
            ? CoapResponse.Text(CoapCode.NotFound, "No resource at this path.")
            : CoapResponse.Text(CoapCode.MethodNotAllowed, "Allowed: " + string.Join(", ", found.Methods.Select(MethodName)));
    }

    private void Respond(CoapMessageType requestType, ushort requestId, ReadOnlySpan<byte> token, IPEndPoint remote, Exchange exchange, CoapResponse response, bool separate)
    {
        // Piggybacked on the ACK of a Confirmable request; otherwise a message of its own (§5.2.2, §5.2.3).
        var (type, messageId) = requestType == CoapMessageType.Confirmable && !separate
            ? (CoapMessageType.Acknowledgement, requestId)
            : (requestType == CoapMessageType.Confirmable ? CoapMessageType.Confirmable : CoapMessageType.NonConfirmable, NextMessageId());
        var bytes = EncodeOrFail(type, messageId, token, response);
        if (type == CoapMessageType.Confirmable)
        {
            // A separate response is Confirmable: sent again until the client acknowledges it (§5.2.2).
            _ = ConfirmAsync(_confirmables.SendAsync(bytes, messageId, remote), response.Delivered);
            return;
        }

        if (!separate)
        {
            exchange.Response = bytes;
        }

        Send(bytes, remote);
        if (type == CoapMessageType.Acknowledgement)
        {
            response.Delivered?.Invoke();
        }
    }

    private static async Task<bool> ConfirmAsync(Task<bool> acknowledged, Action? delivered)
    {
        var answered = await acknowledged.ConfigureAwait(false);
        if (answered)
        {
            delivered?.Invoke();
        }

        return answered;
    }

    /// <summary>Encodes a response; one that does not fit <see cref="CoapServerOptions.MaximumMessageSize"/> becomes a 5.00.</summary>
    private byte[] EncodeOrFail(CoapMessageType type, ushort messageId, ReadOnlySpan<byte> token, CoapResponse response)
    {
        try
        {
            return Encode(type, messageId, token, response);
        }
        catch (InvalidOperationException)
        {
            LogResponseTooLarge(response.Code.ToString());
            return Encode(type, messageId, token, CoapResponse.Text(CoapCode.InternalServerError, "The response is too large."));
        }
    }

    private byte[] Encode(CoapMessageType type, ushort messageId, ReadOnlySpan<byte> token, CoapResponse response)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(_options.MaximumMessageSize);
        try
        {
            return Encode(buffer.AsSpan(0, _options.MaximumMessageSize), type, messageId, token, response);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static byte[] Encode(Span<byte> buffer, CoapMessageType type, ushort messageId, ReadOnlySpan<byte> token, CoapResponse response)
    {
        var writer = new CoapMessageWriter(buffer, type, response.Code, messageId, token);
        var contentFormatWritten = response.ContentFormat is null;
        foreach (var (number, value) in response.Options)
        {
            if (!contentFormatWritten && number > CoapOptionNumber.ContentFormat)
            {
                writer.WriteOption(CoapOptionNumber.ContentFormat, (uint)response.ContentFormat!.Value);
                contentFormatWritten = true;
            }

            writer.WriteOption(number, value);
        }

        if (!contentFormatWritten)
        {
            writer.WriteOption(CoapOptionNumber.ContentFormat, (uint)response.ContentFormat!.Value);
        }

        writer.WritePayload(response.Payload ?? []);
        return writer.Written.ToArray();
    }

    /// <summary>
    /// RFC 7641 §4.1: a GET with Observe 0 of an observable resource that succeeds registers the client (the response
    /// carries a sequence number in Observe); Observe 1 deregisters it.
    /// </summary>
    private CoapResponse Observe(CoapResource resource, CoapRequest request, CoapResponse response)
    {
        if (request.Method != CoapCode.Get || resource.Link is not { Observable: true })
        {
            return response;
        }

        var observe = request.Options.FirstOrDefault(o => o.Number == CoapOptionNumber.Observe);
        if (observe.Value is null || !CoapOption.TryReadUInt(observe.Value, out var value))
        {
            return response;
        }

        if (value == 0 && response.Code.Class == 2)
        {
            _observers.Add(resource, request);
            return WithSequence(response);
        }

        _observers.Remove(resource, request.Remote, request.Token);
        return response;
    }

    /// <summary>
    /// Block2 (RFC 7959 §2.4): a payload too large for one message, or any payload the client asked for in blocks,
    /// is answered one block at a time, the block the request names, of the size it asks (at most 1,024 bytes); the
    /// first block carries the whole size in Size2. The resource answers each block request anew (stateless).
    /// </summary>
    private CoapResponse InBlocks(CoapRequest request, CoapResponse response)
    {
        var payload = response.Payload ?? [];
        var asked = request.Options.FirstOrDefault(o => o.Number == CoapOptionNumber.Block2);
        var largestBlock = Math.Min(1024, _options.MaximumMessageSize - 128);
        CoapBlock block;
        if (asked.Value is not null && CoapOption.TryReadUInt(asked.Value, out var value) && CoapBlock.TryParse(value, out var requested))
        {
            block = requested with { SizeExponent = Math.Min(requested.SizeExponent, CoapBlock.ExponentFor(largestBlock)), More = false };
            block = block with { Number = (uint)(requested.Offset / block.Size) };
        }
        else if (payload.Length > largestBlock)
        {
            block = new CoapBlock(0, false, CoapBlock.ExponentFor(largestBlock));
        }
        else
        {
            return response;
        }

        if (response.Code.Class != 2)
        {
            return response;
        }

        if (block.Offset >= payload.Length && payload.Length > 0)
        {
            return CoapResponse.Text(CoapCode.BadOption, $"Block {block.Number} of {block.Size} bytes is past the end ({payload.Length} bytes).");
        }

        var length = (int)Math.Min(block.Size, payload.Length - block.Offset);
        block = block with { More = block.Offset + length < payload.Length };
        List<(int Number, byte[] Value)> options = [.. response.Options.Where(o => o.Number is not (CoapOptionNumber.Block2 or CoapOptionNumber.Size2))];
        options.Add((CoapOptionNumber.Block2, CoapOption.ToBytes(block.ToUInt32())));
        if (!options.Any(o => o.Number == CoapOptionNumber.ETag))
        {
            // Each block is answered anew: the ETag lets the client see that the representation changed between
            // blocks and start again, rather than put together a body that never existed (RFC 7959 §2.4).
            options.Add((CoapOptionNumber.ETag, PayloadTag(payload)));
        }

        if (block.Number == 0)
        {
            options.Add((CoapOptionNumber.Size2, CoapOption.ToBytes((uint)payload.Length)));
        }

        return response with
        {
            Payload = payload.AsSpan((int)block.Offset, length).ToArray(),
            Options = [.. options.OrderBy(o => o.Number)],
            Delivered = block.More ? null : response.Delivered, // the client has it all with the last block only
        };
    }

    /// <summary>An 8-byte tag of a representation (FNV-1a), the same for the same bytes.</summary>
    private static byte[] PayloadTag(ReadOnlySpan<byte> payload)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in payload)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        var tag = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(tag, hash);
        return tag;
    }

    private CoapResponse WithSequence(CoapResponse response)
    {
        // A 24-bit sequence that only grows (wrapping), so that a client can order notifications (§3.4).
        var sequence = CoapOption.ToBytes((uint)Interlocked.Increment(ref _observeSequence) & 0xFF_FFFF);
        return response with { Options = [.. response.Options.Where(o => o.Number != CoapOptionNumber.Observe).Append((Number: CoapOptionNumber.Observe, Value: sequence)).OrderBy(o => o.Number)] };
    }

    private void OnResourceChanged(CoapResource resource, string? path)
    {
        foreach (var observer in _observers.Of(resource, path))
        {
            _ = NotifyAsync(observer);
        }
    }

    /// <summary>
    /// Sends an observer a notification of the resource's current state. One at a time per observer, and a
    /// Confirmable one is waited for before the next (RFC 7641 §4.5.2: at most one outstanding); the next then
    /// carries the state as it is by then, so changes made meanwhile are not lost, only merged.
    /// </summary>
    private async Task NotifyAsync(CoapObservers.Observer observer)
    {
        try
        {
            await observer.Gate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            if (!_observers.IsRegistered(observer))
            {
                return; // ended while this notification waited its turn
            }

            var acknowledged = await SendNotificationAsync(observer).ConfigureAwait(false);
            if (acknowledged is not null && !await acknowledged.ConfigureAwait(false))
            {
                _observers.Remove(observer); // reset, or not acknowledged after MAX_RETRANSMIT: the client is gone (§4.5)
            }
        }
        finally
        {
            observer.Gate.Release();
        }
    }

    /// <summary>Sends one notification; for a Confirmable one, returns whether it will be acknowledged.</summary>
    private async Task<Task<bool>?> SendNotificationAsync(CoapObservers.Observer observer)
    {
        CoapResponse response;
        try
        {
            response = await observer.Resource.HandleAsync(observer.Request, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception e)
        {
            LogResourceFailed(e, observer.Resource.Template);
            response = CoapResponse.Text(CoapCode.InternalServerError, "The resource failed on the server.");
        }

        // A notification that is no success ends the observation (RFC 7641 §3.2); at least one a day is Confirmable
        // so that a client that went away is noticed (§4.5).
        var ends = response.Code.Class != 2;
        if (ends)
        {
            _observers.Remove(observer);
        }
        else
        {
            // A notification too large for one message carries the first block; the client asks for the rest (RFC 7959 §2.6).
            response = WithSequence(InBlocks(observer.Request, response));
        }

        var now = _timeProvider.GetTimestamp();
        var confirmable = observer.Resource.ConfirmableNotifications || observer.LastConfirmable == 0
            || _timeProvider.GetElapsedTime(observer.LastConfirmable, now) >= _options.ObserveConfirmableInterval;
        var messageId = NextMessageId();
        var bytes = EncodeOrFail(confirmable ? CoapMessageType.Confirmable : CoapMessageType.NonConfirmable, messageId, observer.Request.Token, response);
        if (!ends)
        {
            _observers.Sent(observer, messageId);
        }

        if (!confirmable)
        {
            Send(bytes, observer.Request.Remote);
            return null;
        }

        observer.LastConfirmable = now;
        return ConfirmAsync(_confirmables.SendAsync(bytes, messageId, observer.Request.Remote), response.Delivered);
    }

    private byte[] SendEmpty(CoapMessageType type, ushort messageId, IPEndPoint remote)
    {
        var bytes = CoapMessageWriter.EmptyMessage(type, messageId);
        Send(bytes, remote);
        return bytes;
    }

    private void Send(byte[] datagram, IPEndPoint remote)
    {
        try
        {
            _socket.SendTo(datagram, SocketFlags.None, remote);
            Interlocked.Increment(ref _messagesSent);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            LogSendFailed(remote, e.Message);
        }
    }

    private ushort NextMessageId() => (ushort)Interlocked.Increment(ref _nextMessageId);

    /// <summary>
    /// Forgets exchanges older than EXCHANGE_LIFETIME, and the oldest beyond <see cref="CoapServerOptions.MaximumExchanges"/>,
    /// so that the memory kept for recognising retransmissions is bounded whatever the request rate. Exchanges are
    /// queued in arrival order, so this looks at the oldest only: no scan.
    /// </summary>
    private void SweepExchanges()
    {
        var now = _timeProvider.GetTimestamp();
        while (_exchangesByAge.TryPeek(out var oldest)
            && (_exchangesByAge.Count > _options.MaximumExchanges || _timeProvider.GetElapsedTime(oldest.Exchange.Started, now) > _options.ExchangeLifetime))
        {
            _exchangesByAge.Dequeue();
            _exchanges.TryRemove(KeyValuePair.Create(oldest.Key, oldest.Exchange));
        }
    }

    private static string MethodName(CoapCode code) => code.Value switch
    {
        1 => "GET",
        2 => "POST",
        3 => "PUT",
        4 => "DELETE",
        _ => code.ToString(),
    };

    [LoggerMessage(Level = LogLevel.Error, Message = "A CoAP datagram could not be handled")]
    private partial void LogDatagramFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The CoAP resource /{Path} failed")]
    private partial void LogResourceFailed(Exception exception, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A CoAP response {Code} did not fit in one message; answered 5.00 instead")]
    private partial void LogResponseTooLarge(string code);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sending a CoAP datagram to {Remote} failed: {Reason}")]
    private partial void LogSendFailed(IPEndPoint remote, string reason);

    private readonly record struct ExchangeKey(IPEndPoint Remote, ushort MessageId);

    private sealed class Exchange(long started)
    {
        public long Started { get; } = started;

        public byte[]? Response { get; set; }
    }
}
