using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>
/// A real broker on Kestrel with two listeners from the OS: MQTT over TCP, and HTTP serving MQTT over WebSocket at
/// <c>/mqtt</c> through <see cref="WebSocketConnection"/>. Fails the test on dispose if anything logged an error.
/// </summary>
public sealed class WebSocketBroker : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WebSocketBroker(WebApplication app, MqttBroker broker, RecordingLoggerProvider logs, int tcpPort, int httpPort)
    {
        _app = app;
        Broker = broker;
        Logs = logs;
        TcpPort = tcpPort;
        WebSocketUri = new Uri($"ws://127.0.0.1:{httpPort}/mqtt");
    }

    public MqttBroker Broker { get; }

    public RecordingLoggerProvider Logs { get; }

    public int TcpPort { get; }

    public Uri WebSocketUri { get; }

    /// <summary>The close status each served WebSocket connection ended with, in order of ending.</summary>
    public ConcurrentQueue<WebSocketCloseStatus> CloseStatuses { get; } = new();

    public static async Task<WebSocketBroker> StartAsync()
    {
        var logs = new RecordingLoggerProvider();
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        var broker = new MqttBroker(new MqttBrokerOptions(), loggerFactory: loggerFactory);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddProvider(logs);
        builder.Services.AddSingleton(broker);
        ListenOptions? tcp = null;
        ListenOptions? http = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.UseConnectionHandler<MqttConnectionHandler>();
                tcp = l;
            });
            k.Listen(IPAddress.Loopback, 0, l => http = l);
        });
        var app = builder.Build();
        WebSocketBroker? fixture = null;
        app.UseWebSockets();
        app.Map("/mqtt", async (HttpContext context) =>
        {
            if (!context.WebSockets.WebSocketRequestedProtocols.Contains("mqtt"))
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            using var webSocket = await context.WebSockets.AcceptWebSocketAsync("mqtt");
            var connection = new WebSocketConnection(webSocket, context.Connection.Id, null, new IPEndPoint(context.Connection.RemoteIpAddress!, context.Connection.RemotePort));
            await using (connection)
            {
                connection.Start();
                await broker.RunConnectionAsync(connection);
            }

            fixture!.CloseStatuses.Enqueue(connection.CloseStatus);
        });
        await app.StartAsync();
        fixture = new WebSocketBroker(app, broker, logs, tcp!.IPEndPoint!.Port, http!.IPEndPoint!.Port);
        return fixture;
    }

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await _app.StopAsync(cts.Token);
        }

        await _app.DisposeAsync();
        var errors = Logs.Entries.Where(e => e.Level >= LogLevel.Error).ToList();
        if (errors.Count > 0)
        {
            Assert.Fail("The broker logged errors:\n" + string.Join("\n", errors));
        }
    }
}

/// <summary>A WebSocket speaking MQTT bytes, for what a library client will not do: split packets, text messages, bare closes.</summary>
public sealed class RawWebSocketClient : IAsyncDisposable
{
    private readonly List<byte> _buffer = [];
    private readonly byte[] _chunk = new byte[64 * 1024];

    private RawWebSocketClient(ClientWebSocket socket) => Socket = socket;

    public ClientWebSocket Socket { get; }

    /// <summary>How the server closed, once its close frame was received.</summary>
    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public static async Task<RawWebSocketClient> ConnectAsync(Uri uri, string? subProtocol = "mqtt")
    {
        var socket = new ClientWebSocket();
        if (subProtocol is not null)
        {
            socket.Options.AddSubProtocol(subProtocol);
        }

        using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
        await socket.ConnectAsync(uri, cts.Token);
        return new RawWebSocketClient(socket);
    }

    public Task SendAsync(byte[] bytes, WebSocketMessageType type = WebSocketMessageType.Binary) =>
        Socket.SendAsync(bytes, type, endOfMessage: true, CancellationToken.None);

    /// <summary>The next MQTT packet, however the server split it into messages; null once the server closed.</summary>
    public async Task<RawPacket?> ReadPacketAsync()
    {
        using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
        while (true)
        {
            if (TryParse(out var packet))
            {
                return packet;
            }

            if (CloseStatus is not null)
            {
                return null;
            }

            WebSocketReceiveResult result;
            try
            {
                result = await Socket.ReceiveAsync(_chunk, cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"No packet and no close within {Poll.DefaultTimeout.TotalSeconds} s (buffered: {Convert.ToHexString([.. _buffer])})");
                throw;
            }

            if (result.MessageType == WebSocketMessageType.Close)
            {
                CloseStatus = result.CloseStatus;
                continue;
            }

            Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
            _buffer.AddRange(_chunk.AsSpan(0, result.Count));
        }
    }

    /// <summary>Reads what the server still sends until its close frame; returns the packets.</summary>
    public async Task<List<RawPacket>> ReadUntilClosedAsync()
    {
        var packets = new List<RawPacket>();
        while (await ReadPacketAsync() is { } packet)
        {
            packets.Add(packet);
        }

        return packets;
    }

    public async ValueTask DisposeAsync()
    {
        if (Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                // The server went first.
            }
        }

        Socket.Dispose();
    }

    private bool TryParse(out RawPacket? packet)
    {
        var taken = RawPacket.TryTake(_buffer, out var whole);
        packet = taken ? whole : null;
        return taken;
    }
}
