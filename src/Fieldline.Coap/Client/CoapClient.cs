using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using Fieldline.Coap.Protocol;

namespace Fieldline.Coap.Client;

/// <summary>How a <see cref="CoapClient"/> retransmits (RFC 7252 §4.8 names and defaults).</summary>
public sealed class CoapClientOptions
{
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(2);

    public double AckRandomFactor { get; set; } = 1.5;

    public int MaxRetransmit { get; set; } = 4;

    /// <summary>Largest datagram received.</summary>
    public int MaximumMessageSize { get; set; } = 1152;
}

/// <summary>A response the client received: code, content format, payload and all options.</summary>
public sealed record CoapClientResponse(CoapCode Code, int? ContentFormat, byte[] Payload, IReadOnlyList<(int Number, byte[] Value)> Options)
{
    /// <summary>The Observe sequence number of a notification (or of the registering response); null otherwise.</summary>
    public uint? ObserveSequence => Options.FirstOrDefault(o => o.Number == CoapOptionNumber.Observe).Value is { } value && CoapOption.TryReadUInt(value, out var sequence) ? sequence : null;
}

/// <summary>
/// A CoAP client for one server: Confirmable requests retransmitted until acknowledged (§4.2), responses matched to
/// requests by token whether piggybacked or separate (§5.2), and observations (RFC 7641) as async streams.
/// </summary>
public sealed class CoapClient : IAsyncDisposable
{
    private readonly IPEndPoint _server;
    private readonly CoapClientOptions _options;
    private readonly Socket _socket;
    private readonly ConfirmableTransmissions _confirmables;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<CoapClientResponse>> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Channel<CoapClientResponse>> _observations = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _receiving;
    private int _nextMessageId = RandomNumberGenerator.GetInt32(ushort.MaxValue);

    public CoapClient(IPEndPoint server, CoapClientOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        _server = server;
        _options = options ?? new CoapClientOptions();
        _socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
        _confirmables = new ConfirmableTransmissions(
            new TransmissionParameters(_options.AckTimeout, _options.AckRandomFactor, _options.MaxRetransmit), timeProvider ?? TimeProvider.System, Send);
        _receiving = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>Sends a request and returns its response; throws <see cref="TimeoutException"/> when the server never acknowledged it.</summary>
    public Task<CoapClientResponse> SendAsync(CoapCode method, string path, byte[]? payload = null, int? contentFormat = null, bool confirmable = true, IEnumerable<(int Number, byte[] Value)>? options = null, CancellationToken cancellationToken = default) =>
        RequestAsync(RandomNumberGenerator.GetBytes(8), method, path, payload, contentFormat, confirmable, options, cancellationToken);

    private async Task<CoapClientResponse> RequestAsync(
        byte[] token, CoapCode method, string path, byte[]? payload, int? contentFormat, bool confirmable, IEnumerable<(int Number, byte[] Value)>? options, CancellationToken cancellationToken)
    {
        var key = Convert.ToHexString(token);
        var response = new TaskCompletionSource<CoapClientResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[key] = response;
        try
        {
            await TransmitAsync(method, path, payload, contentFormat, confirmable, options ?? [], token, response).ConfigureAwait(false);
            return await response.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _requests.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// Observes a resource: the registering response first, then each notification, until the caller stops reading
    /// (the observation is then cancelled with a GET carrying Observe 1).
    /// </summary>
    public async IAsyncEnumerable<CoapClientResponse> ObserveAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var token = RandomNumberGenerator.GetBytes(8);
        var key = Convert.ToHexString(token);
        var channel = Channel.CreateUnbounded<CoapClientResponse>(new UnboundedChannelOptions { SingleReader = true });
        _observations[key] = channel;
        try
        {
            await TransmitAsync(CoapCode.Get, path, null, null, true, [(CoapOptionNumber.Observe, [])], token, null).ConfigureAwait(false);
            await foreach (var notification in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return notification;
            }
        }
        finally
        {
            _observations.TryRemove(key, out _);
            if (!_stopping.IsCancellationRequested)
            {
                // Deregister with the observation's own token (RFC 7641 §3.6); not waited on for long.
                using var deregister = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await RequestAsync(token, CoapCode.Get, path, null, null, true, [(CoapOptionNumber.Observe, [1])], deregister.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or TimeoutException)
                {
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _confirmables.Clear();
        _socket.Dispose();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    private async Task TransmitAsync(
        CoapCode method, string path, byte[]? payload, int? contentFormat, bool confirmable, IEnumerable<(int Number, byte[] Value)> extra, byte[] token, TaskCompletionSource<CoapClientResponse>? response)
    {
        var messageId = (ushort)Interlocked.Increment(ref _nextMessageId);
        var buffer = new byte[_options.MaximumMessageSize + 2048];
        var writer = new CoapMessageWriter(buffer, confirmable ? CoapMessageType.Confirmable : CoapMessageType.NonConfirmable, method, messageId, token);
        List<(int Number, byte[] Value)> options = [.. extra];
        var queryStart = path.IndexOf('?', StringComparison.Ordinal);
        var query = queryStart < 0 ? "" : path[(queryStart + 1)..];
        foreach (var segment in (queryStart < 0 ? path : path[..queryStart]).Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            options.Add((CoapOptionNumber.UriPath, System.Text.Encoding.UTF8.GetBytes(Uri.UnescapeDataString(segment))));
        }

        foreach (var argument in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            options.Add((CoapOptionNumber.UriQuery, System.Text.Encoding.UTF8.GetBytes(Uri.UnescapeDataString(argument))));
        }

        if (contentFormat is { } format)
        {
            options.Add((CoapOptionNumber.ContentFormat, CoapOption.ToBytes((uint)format)));
        }

        foreach (var (number, value) in options.OrderBy(o => o.Number))
        {
            writer.WriteOption(number, value);
        }

        writer.WritePayload(payload ?? []);
        var datagram = writer.Written.ToArray();
        if (!confirmable)
        {
            Send(datagram, _server);
            return;
        }

        var acknowledged = _confirmables.SendAsync(datagram, messageId, _server);
        if (!await acknowledged.ConfigureAwait(false))
        {
            var failure = new TimeoutException($"The server did not acknowledge {method} /{path.TrimStart('/')} after {_options.MaxRetransmit} retransmissions (or reset it).");
            if (response is not null)
            {
                response.TrySetException(failure);
                return;
            }

            throw failure;
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[_options.MaximumMessageSize + 1];
        EndPoint any = new IPEndPoint(_server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!_stopping.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            OnDatagram(buffer.AsSpan(0, received.ReceivedBytes), (IPEndPoint)received.RemoteEndPoint);
        }
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (CoapMessageView.TryParse(datagram, out var message) != CoapFormatError.None)
        {
            return;
        }

        if (message.Type is CoapMessageType.Acknowledgement or CoapMessageType.Reset)
        {
            _confirmables.OnAnswer(remote, message.MessageId, reset: message.Type == CoapMessageType.Reset);
            if (message.Code.IsEmpty)
            {
                return; // an empty ACK: a separate response will follow
            }
        }

        if (!message.Code.IsResponse)
        {
            return;
        }

        var key = Convert.ToHexString(message.Token);
        var response = ToResponse(message);
        var wanted = false;
        if (_observations.TryGetValue(key, out var observation))
        {
            wanted = observation.Writer.TryWrite(response);
            if (response.Code.Class != 2)
            {
                observation.Writer.TryComplete();
            }
        }
        else if (_requests.TryGetValue(key, out var request))
        {
            wanted = request.TrySetResult(response);
        }

        if (message.Type == CoapMessageType.Confirmable)
        {
            // §5.2.2 and RFC 7641 §3.6: acknowledge what we asked for; reset what we no longer want.
            Send(CoapMessageWriter.EmptyMessage(wanted ? CoapMessageType.Acknowledgement : CoapMessageType.Reset, message.MessageId), remote);
        }
        else if (message.Type == CoapMessageType.NonConfirmable && !wanted)
        {
            Send(CoapMessageWriter.EmptyMessage(CoapMessageType.Reset, message.MessageId), remote);
        }
    }

    private static CoapClientResponse ToResponse(CoapMessageView message)
    {
        List<(int Number, byte[] Value)> options = [];
        foreach (var option in message.GetOptions())
        {
            options.Add((option.Number, option.Value.ToArray()));
        }

        int? format = message.TryGetUInt(CoapOptionNumber.ContentFormat, out var value) ? (int)value : null;
        return new CoapClientResponse(message.Code, format, message.Payload.ToArray(), options);
    }

    private void Send(byte[] datagram, IPEndPoint remote)
    {
        try
        {
            _socket.SendTo(datagram, SocketFlags.None, remote);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The transmission layer retries Confirmable messages; a lost Non-confirmable one is lost by design.
        }
    }
}
