using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Fieldline.Mqtt.Transport;

/// <summary>
/// MQTT over WebSocket (MQTT 5.0 chapter 6, 3.1.1 section 6): a <see cref="ConnectionContext"/> whose
/// <see cref="Transport"/> carries the payloads of binary WebSocket messages, so that
/// <see cref="Server.MqttBroker.RunConnectionAsync"/> serves it like a TCP connection.
/// </summary>
/// <remarks>
/// A message may hold several MQTT packets or part of one, so message boundaries mean nothing: received payloads
/// are written straight into the input pipe's pooled memory, and each batch the broker writes goes out as one
/// message. A text message breaks the protocol (MQTT-6.0.0-1): the socket is closed with 1003. The close handshake
/// is answered when the broker has finished writing; <see cref="DisposeAsync"/> waits for it, bounded by the close
/// timeout, then aborts the socket.
/// </remarks>
public sealed class WebSocketConnection : ConnectionContext
{
    /// <summary>The receive buffer asked of the pipe; its segments are 4 KiB, so a receive fills at most one.</summary>
    private const int MinimumReceiveSize = 1024;

    private readonly WebSocket _webSocket;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly TimeSpan _closeTimeout;
    private Task _receiving = Task.CompletedTask;
    private Task _sending = Task.CompletedTask;
    private volatile bool _textReceived;
    private int _started;
    private int _disposed;

    /// <summary>Wraps an accepted WebSocket; call <see cref="Start"/> before handing the connection to the broker.</summary>
    /// <param name="webSocket">The accepted WebSocket (subprotocol negotiated by the caller).</param>
    /// <param name="connectionId">An id for logs, e.g. the HTTP connection's.</param>
    /// <param name="localEndPoint">The server's address of the underlying connection.</param>
    /// <param name="remoteEndPoint">The client's address of the underlying connection.</param>
    /// <param name="closeTimeout">How long <see cref="DisposeAsync"/> waits for the close handshake (default 5 s).</param>
    public WebSocketConnection(WebSocket webSocket, string connectionId, EndPoint? localEndPoint, EndPoint? remoteEndPoint, TimeSpan? closeTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(webSocket);
        ArgumentNullException.ThrowIfNull(connectionId);
        _webSocket = webSocket;
        _closeTimeout = closeTimeout ?? TimeSpan.FromSeconds(5);

        // The limits of Kestrel's socket transport: the broker sees the same backpressure as on TCP. The blocks
        // come from a pool that keeps them, so that messages do not cost allocations.
        _input = new Pipe(new PipeOptions(BlockMemoryPool.WebSockets, pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(BlockMemoryPool.WebSockets, pauseWriterThreshold: 64 * 1024, resumeWriterThreshold: 32 * 1024, useSynchronizationContext: false));
        Transport = new ApplicationPipe(_input.Reader, _output.Writer);
        ConnectionId = connectionId;
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        ConnectionClosed = _closed.Token;
    }

    /// <inheritdoc />
    public override IDuplexPipe Transport { get; set; }

    /// <inheritdoc />
    public override string ConnectionId { get; set; }

    /// <inheritdoc />
    public override IFeatureCollection Features { get; } = new FeatureCollection();

    /// <inheritdoc />
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    /// <summary>The close status sent to the client: 1000, or 1003 after a text message.</summary>
    public WebSocketCloseStatus CloseStatus => _textReceived ? WebSocketCloseStatus.InvalidMessageType : WebSocketCloseStatus.NormalClosure;

    /// <summary>Starts pumping messages into <see cref="Transport"/>'s input and its output into messages.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1)
        {
            throw new InvalidOperationException("The connection is already started.");
        }

        _receiving = ReceiveAsync();
        _sending = SendAsync();
    }

    /// <inheritdoc />
    public override void Abort(ConnectionAbortedException abortReason)
    {
        _webSocket.Abort();
        SignalClosed();
    }

    /// <summary>
    /// Ends the connection: completes the application's side of the pipes, waits for what was written to be sent
    /// and for the close handshake, and aborts the socket when that takes longer than the close timeout.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await CloseAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    private async Task CloseAsync()
    {
        await Transport.Output.CompleteAsync().ConfigureAwait(false);
        await Transport.Input.CompleteAsync().ConfigureAwait(false);
        var pumps = Task.WhenAll(_receiving, _sending);
        try
        {
            await pumps.WaitAsync(_closeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The client did not answer the close: drop the connection instead of holding it.
            _webSocket.Abort();
            await pumps.ConfigureAwait(false);
        }

        SignalClosed();
        _closed.Dispose();
    }

    private async Task ReceiveAsync()
    {
        await Task.Yield();
        var writer = _input.Writer;
        var applicationReading = true;
        try
        {
            while (applicationReading)
            {
                var result = await _webSocket.ReceiveAsync(writer.GetMemory(MinimumReceiveSize), CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // The client closes; the close is answered once the broker has finished writing.
                    return;
                }

                if (result.MessageType == WebSocketMessageType.Text)
                {
                    _textReceived = true;
                    await writer.CompleteAsync().ConfigureAwait(false);

                    // Stops the sender at once, so that the close goes out even while the broker is still writing.
                    _output.Reader.CancelPendingRead();
                    break;
                }

                writer.Advance(result.Count);
                var flush = await writer.FlushAsync().ConfigureAwait(false);
                applicationReading = !flush.IsCompleted;
            }

            await DiscardUntilCloseAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The client went away without a close: for the broker that is the end of its input.
        }
        finally
        {
            await writer.CompleteAsync().ConfigureAwait(false);
            SignalClosed();
        }
    }

    /// <summary>Nobody reads any more, but the client's close frame must still be received to end the handshake.</summary>
    private async Task DiscardUntilCloseAsync()
    {
        var discard = new byte[256];
        while (_webSocket.State is WebSocketState.Open or WebSocketState.CloseSent)
        {
            var result = await _webSocket.ReceiveAsync(discard.AsMemory(), CancellationToken.None).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
        }
    }

    private async Task SendAsync()
    {
        await Task.Yield();
        var reader = _output.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled && _textReceived)
                {
                    return;
                }

                var buffer = result.Buffer;
                try
                {
                    if (!buffer.IsEmpty)
                    {
                        await SendMessageAsync(buffer).ConfigureAwait(false);
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.End);
                }

                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            // The socket failed; the receive side ends with it.
            _webSocket.Abort();
        }
        finally
        {
            // The broker's further writes complete at once instead of filling a pipe nobody sends.
            await reader.CompleteAsync().ConfigureAwait(false);
            await CloseOutputAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Sends a batch of output as one binary message, segment by segment, without copying.</summary>
    private async ValueTask SendMessageAsync(ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsSingleSegment)
        {
            await _webSocket.SendAsync(buffer.First, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
            return;
        }

        // Each segment goes out when the next is known, so that the last one ends the message.
        ReadOnlyMemory<byte> pending = default;
        foreach (var segment in buffer)
        {
            if (segment.IsEmpty)
            {
                continue;
            }

            if (!pending.IsEmpty)
            {
                await _webSocket.SendAsync(pending, WebSocketMessageType.Binary, endOfMessage: false, CancellationToken.None).ConfigureAwait(false);
            }

            pending = segment;
        }

        await _webSocket.SendAsync(pending, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task CloseOutputAsync()
    {
        if (_webSocket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }

        try
        {
            var status = CloseStatus;
            var description = status == WebSocketCloseStatus.InvalidMessageType ? "MQTT over WebSocket uses binary messages" : null;
            await _webSocket.CloseOutputAsync(status, description, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            // The client is gone; nothing to close.
        }
    }

    private void SignalClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed: signalled already.
        }
    }

    private sealed class ApplicationPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
