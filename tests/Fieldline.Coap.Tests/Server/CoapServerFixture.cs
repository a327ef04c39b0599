using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Microsoft.Extensions.Logging;

namespace Fieldline.Coap.Tests.Server;

/// <summary>A started <see cref="CoapServer"/> on [::] (dual-mode) with a port from the OS.</summary>
internal sealed class CoapTestServer : IAsyncDisposable
{
    private CoapTestServer(CoapServer server, ErrorLogger logger)
    {
        Server = server;
        Logger = logger;
    }

    public CoapServer Server { get; }

    public ErrorLogger Logger { get; }

    public int Port => Server.LocalEndPoint!.Port;

    /// <summary>[::1] where the machine has IPv6, else 127.0.0.1.</summary>
    public static IPAddress Ipv6LoopbackIfSupported => Socket.OSSupportsIPv6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;

    public static CoapTestServer Start(IEnumerable<CoapResource> resources, Action<CoapServerOptions>? configure = null, TimeProvider? timeProvider = null)
    {
        // Dual-mode on [::] as the server runs by default; IPv4 only where the machine has no IPv6 at all.
        var options = new CoapServerOptions { Address = Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any, Port = 0 };
        configure?.Invoke(options);
        var logger = new ErrorLogger();
        var server = new CoapServer(options, resources, timeProvider ?? TimeProvider.System, logger);
        server.Start();
        return new CoapTestServer(server, logger);
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Runs libcoap's coap-client-notls and returns its exit code and what it wrote to stdout and stderr.</summary>
    public static async Task<(int ExitCode, string Output)> RunCoapClientAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("coap-client-notls") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await output) + (await error));
    }
}

/// <summary>A raw UDP socket playing a CoAP client, to send exactly the bytes a test wants.</summary>
internal sealed class RawCoapClient : IDisposable
{
    private readonly UdpClient _udp;
    private readonly IPEndPoint _server;

    public RawCoapClient(int port, IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        _udp = new UdpClient(new IPEndPoint(address.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        _server = new IPEndPoint(address, port);
    }

    public Task SendAsync(byte[] datagram) => _udp.SendAsync(datagram, _server).AsTask();

    public static byte[] Request(CoapMessageType type, CoapCode method, ushort messageId, byte[] token, string path, byte[]? payload = null, Action<CoapMessageWriterOptions>? options = null)
    {
        var buffer = new byte[2048];
        var writer = new CoapMessageWriter(buffer, type, method, messageId, token);
        var extra = new CoapMessageWriterOptions();
        options?.Invoke(extra);
        foreach (var (number, value) in extra.Before)
        {
            writer.WriteOption(number, value);
        }

        foreach (var segment in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            writer.WriteOption(CoapOptionNumber.UriPath, segment);
        }

        foreach (var (number, value) in extra.After)
        {
            writer.WriteOption(number, value);
        }

        writer.WritePayload(payload ?? []);
        return writer.Written.ToArray();
    }

    /// <summary>The next datagram, parsed into what tests look at; fails after 10 s.</summary>
    public async Task<Received> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var result = await _udp.ReceiveAsync(timeout.Token);
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(result.Buffer, out var message));
        return new Received(message.Type, message.Code, message.MessageId, message.Token.ToArray(), Encoding.UTF8.GetString(message.Payload), result.Buffer);
    }

    /// <summary>Whether a datagram is waiting to be received.</summary>
    public bool HasDatagram => _udp.Available > 0;

    public void Dispose() => _udp.Dispose();

    public sealed record Received(CoapMessageType Type, CoapCode Code, ushort MessageId, byte[] Token, string Payload, byte[] Bytes);
}

/// <summary>Options a test adds around Uri-Path (numbers below 11 before it, above after it).</summary>
internal sealed class CoapMessageWriterOptions
{
    public List<(int Number, byte[] Value)> Before { get; } = [];

    public List<(int Number, byte[] Value)> After { get; } = [];
}

/// <summary>Records error logs, so that a test can fail on any the server wrote.</summary>
internal sealed class ErrorLogger : ILogger<CoapServer>
{
    private readonly List<string> _errors = [];

    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_errors)
            {
                return [.. _errors];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (logLevel >= LogLevel.Error)
        {
            lock (_errors)
            {
                _errors.Add(formatter(state, exception) + (exception is null ? "" : ": " + exception.Message));
            }
        }
    }
}

/// <summary>Bounded polling instead of fixed sleeps: waits until a condition holds, or fails naming what it waited for.</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"expected {what} within 10 s");
            await Task.Delay(10);
        }
    }
}
