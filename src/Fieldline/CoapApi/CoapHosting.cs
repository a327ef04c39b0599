using System.Net;
using System.Net.Sockets;
using Fieldline.Coap.Server;
using Fieldline.Core.Commands;
using Fieldline.Hosting;
using Microsoft.Extensions.Options;

namespace Fieldline.CoapApi;

/// <summary>Composes the CoAP device API into the host: the sessions, the resources and the UDP listener.</summary>
internal static class CoapHosting
{
    /// <summary>
    /// Registers the CoAP listener and its resources. The listener is a hosted service registered here, so call this
    /// after storage: it must start after the registry is open and stop before it closes.
    /// </summary>
    public static IServiceCollection AddFieldlineCoap(this IServiceCollection services)
    {
        services.AddSingleton<CoapCommandTransport>();
        services.AddSingleton<CoapDeviceSessions>();
        services.AddHostedService(sp => sp.GetRequiredService<CoapDeviceSessions>());
        services.AddSingleton<CoapListener>();
        services.AddHostedService(sp => sp.GetRequiredService<CoapListener>());
        return services;
    }

    /// <summary>The command transports of the host: MQTT always, CoAP when it is enabled.</summary>
    public static ICommandTransport CommandTransports(IServiceProvider services, ICommandTransport mqtt) =>
        services.GetRequiredService<IOptions<FieldlineOptions>>().Value.Coap.Enabled
            ? new CommandTransports([mqtt, services.GetRequiredService<CoapCommandTransport>()])
            : mqtt;

    /// <summary>
    /// Where CoAP binds: the configured address, except that 0.0.0.0 (all IPv4 interfaces, the default) takes every
    /// IPv6 interface too when the machine has IPv6, as one dual-mode socket.
    /// </summary>
    public static IPAddress ListenAddress(string bind)
    {
        var address = IPAddress.Parse(bind);
        return address.Equals(IPAddress.Any) && Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : address;
    }
}

/// <summary>Runs the <see cref="CoapServer"/> with the device API's resources while the host runs.</summary>
internal sealed class CoapListener(
    IOptions<FieldlineOptions> options,
    CoapDeviceSessions sessions,
    Core.Telemetry.TelemetryIngest ingest,
    Core.Shadows.ShadowService shadows,
    CommandService commands,
    CoapCommandTransport transport,
    TimeProvider timeProvider,
    ILogger<CoapServer> logger) : IHostedService, IAsyncDisposable
{
    private CoapServer? _server;
    private DeviceShadowResource? _shadow;

    /// <summary>Where the server listens; null when CoAP is disabled or not started.</summary>
    public IPEndPoint? LocalEndPoint => _server?.LocalEndPoint;

    /// <summary>The running server (for its observer count); null when CoAP is disabled.</summary>
    public CoapServer? Server => _server;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var coap = options.Value.Coap;
        if (!coap.Enabled)
        {
            return;
        }

        _shadow = new DeviceShadowResource(sessions, shadows);
        CoapResource[] resources =
        [
            new DeviceTelemetryResource(sessions, ingest),
            _shadow,
            new DeviceShadowReportedResource(sessions, shadows),
            new DeviceCommandsResource(sessions, commands, transport),
            new DeviceCommandResponseResource(sessions, commands),
        ];
        var server = new CoapServer(
            new CoapServerOptions
            {
                Address = CoapHosting.ListenAddress(options.Value.Bind),
                Port = coap.Port,

                // A notification at least once per idle timeout is Confirmable, so that the probe of an idle observing
                // device (CoapDeviceSessions.Probe) finds out whether it is still there.
                ObserveConfirmableInterval = TimeSpan.FromSeconds(Math.Min(coap.IdleTimeoutSeconds, TimeSpan.FromHours(24).TotalSeconds)),
            },
            resources,
            timeProvider,
            logger);
        try
        {
            server.Start();
        }
        catch (SocketException e)
        {
            await server.DisposeAsync();
            throw new IOException($"CoAP cannot listen on UDP port {coap.Port}: {e.Message}", e);
        }

        _server = server;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _server, null) is { } server)
        {
            await server.DisposeAsync();
        }

        _shadow?.Dispose();
    }
}
