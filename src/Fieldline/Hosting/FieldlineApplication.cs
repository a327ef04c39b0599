using System.Diagnostics.Metrics;
using System.Net;
using Fieldline.Apis;
using Fieldline.Broker;
using Fieldline.CoapApi;
using Fieldline.Core.Commands;
using Fieldline.Core.Devices;
using Fieldline.Core.Events;
using Fieldline.Core.Security;
using Fieldline.Core.ServiceAccounts;
using Fieldline.Core.Settings;
using Fieldline.Core.Shadows;
using Fieldline.Core.Telemetry;
using Fieldline.Core.Webhooks;
using Fieldline.Observability;
using Fieldline.Security;
using Fieldline.Storage.Sqlite;
using Fieldline.WebConsole;
using Fieldline.Webhooks;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Fieldline.Hosting;

/// <summary>
/// Composes the Fieldline process: configuration, services, Kestrel listeners and endpoints. The CLI and the
/// tests start the same host through <see cref="StartAsync"/>, then read the bound addresses.
/// </summary>
internal sealed partial class FieldlineApplication : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FieldlineApplication(WebApplication app, FieldlineOptions options, Uri httpUrl, int? mqttPort, int? mqttTlsPort)
    {
        _app = app;
        Options = options;
        HttpUrl = httpUrl;
        MqttPort = mqttPort;
        MqttTlsPort = mqttTlsPort;
    }

    /// <summary>The validated options this process runs with.</summary>
    public FieldlineOptions Options { get; }

    /// <summary>The URL the REST API answers on, with the port actually bound (loopback when bound to all interfaces).</summary>
    public Uri HttpUrl { get; }

    /// <summary>The TCP port the MQTT listener is bound to; null while no MQTT listener is configured.</summary>
    public int? MqttPort { get; }

    /// <summary>The TCP port the MQTT over TLS listener is bound to; null when TLS is disabled.</summary>
    public int? MqttTlsPort { get; }

    /// <summary>The UDP port the CoAP listener is bound to; null when CoAP is disabled.</summary>
    public int? CoapPort => Services.GetRequiredService<CoapListener>().LocalEndPoint?.Port;

    /// <summary>The URL of MQTT over WebSocket (on the HTTP port).</summary>
    public Uri MqttWebSocketUrl => new(LocalUrl("ws", Options.Bind, HttpUrl.Port), MqttWebSocketEndpoint.Path);

    /// <summary>The TLS listener's certificates; null when TLS is disabled.</summary>
    public MqttTlsCertificates? TlsCertificates => Services.GetService<MqttTlsCertificates>();

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Builds and starts the host; when this returns, storage is open and both listeners accept connections.
    /// Throws <see cref="OptionsValidationException"/> for a bad configuration.
    /// </summary>
    public static async Task<FieldlineApplication> StartAsync(FieldlineStartup startup, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(startup);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ApplicationName = "fieldline",
            ContentRootPath = AppContext.BaseDirectory,
        });

        // Only our sources: appsettings.json, FIELDLINE__* variables and the flags (not every environment variable).
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddFieldlineSources(AppContext.BaseDirectory, startup.ConfigurationOverrides);
        var options = FieldlineConfiguration.BindAndValidate(builder.Configuration);
        var tls = options.Mqtt.Tls.Enabled ? MqttTlsCertificates.Load(options, TimeProvider.System) : null;

        ListenOptions? httpListener = null;
        var mqttListeners = new MqttListeners();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Parse(options.Bind), options.Http.Port, listen => httpListener = listen);
            ConfigureMqttListener(kestrel, options, tls, mqttListeners);
        });

        if (tls is not null)
        {
            // A factory, so that the container disposes the certificates with the host.
            builder.Services.AddSingleton(_ => tls);
        }

        builder.Services.AddSingleton(mqttListeners); // the console shows the MQTT port actually bound
        ConfigureServices(builder.Services, builder.Configuration);
        startup.ConfigureBuilder?.Invoke(builder);
        if (!builder.Services.Any(s => s.ServiceType == typeof(ITelemetryStore)))
        {
            throw new InvalidOperationException(
                "No telemetry store is registered (ITelemetryStore). Register it in FieldlineApplication.ConfigureServices.");
        }

        var app = builder.Build();
        MapEndpoints(app);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        if (options.Mqtt.AllowAnonymous)
        {
            LogAnonymousAllowed(app.Services.GetRequiredService<ILogger<FieldlineApplication>>());
        }

        var httpPort = httpListener!.IPEndPoint!.Port;
        var application = new FieldlineApplication(
            app, options, LocalUrl("http", options.Bind, httpPort), mqttListeners.Tcp?.IPEndPoint?.Port, mqttListeners.Tls?.IPEndPoint?.Port);
        if (startup.Output is { } output)
        {
            await application.WriteBannerAsync(output);
        }

        return application;
    }

    /// <summary>Completes when the host stops: Ctrl+C, SIGTERM, or <paramref name="cancellationToken"/>.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops gracefully (listeners first, then the telemetry flush) and releases everything.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    /// <summary>Every DI registration of the process. Registration order of hosted services is start order.</summary>
    internal static void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<FieldlineOptions>().Bind(configuration).ValidateOnStart();
        services.AddSingleton<IValidateOptions<FieldlineOptions>, FieldlineOptionsValidator>();
        services.AddSingleton(TimeProvider.System);

        services.AddProblemDetails();
        services.AddExceptionHandler<BadRequestExceptionHandler>();
        services.AddExceptionHandler<ConsoleErrorPage>();
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.ConfigureHttpJsonOptions(o => ApiJson.Configure(o.SerializerOptions));
        services.AddOpenApi(o => o.AddDocumentTransformer<AdminKeySecurityTransformer>());

        // First hosted service: measurements from everything that starts later are counted.
        services.AddSingleton<PrometheusExporter>();
        services.AddHostedService(sp => sp.GetRequiredService<PrometheusExporter>());
        services.AddSingleton<DeviceMetrics>();

        // Storage: opened before anything that reads it, flushed on stop after the listeners closed.
        services.AddSingleton(sp => new SqliteRegistryDatabase(sp.GetRequiredService<IOptions<FieldlineOptions>>().Value.DataDir));
        services.AddSingleton<IDeviceRegistry, SqliteDeviceRegistry>();
        services.AddSingleton<IServiceAccountStore, SqliteServiceAccountStore>();
        services.AddSingleton<ISettingsStore, SqliteSettingsStore>();
        services.AddSingleton<EventBus>();
        services.AddSingleton<LiveTelemetry>();
        services.AddSingleton(sp => new DataReceivedBatcher(
            sp.GetRequiredService<EventBus>(),
            TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<FieldlineOptions>>().Value.Events.DataReceivedWindowSeconds)));
        services.AddHostedService<PlatformEventSources>();

        // Webhook secrets are kept encrypted with keys in the data directory.
        services.AddDataProtection().SetApplicationName("fieldline");
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<FieldlineOptions>, ILoggerFactory>((keys, fieldline, loggers) =>
            keys.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(Path.Combine(Path.GetFullPath(fieldline.Value.DataDir), "keys")), loggers));
        services.Configure<WebhookOptions>(configuration.GetSection("Webhooks"));
        services.AddSingleton<IWebhookStore, SqliteWebhookStore>();
        services.AddSingleton<WebhookDispatcher>();
        services.AddSingleton<IShadowStore, SqliteShadowStore>();
        services.AddSingleton(sp => new ShadowService(
            sp.GetRequiredService<IShadowStore>(),
            sp.GetRequiredService<IDeviceRegistry>(),
            sp.GetRequiredService<TimeProvider>(),
            configuration.GetSection("Shadows").Get<ShadowLimits>() ?? new ShadowLimits(),
            sp.GetRequiredService<IMeterFactory>()));

        services.Configure<SqliteTelemetryStoreOptions>(configuration.GetSection("Telemetry:Store"));
        services.AddSingleton<ITelemetryStore>(sp => new SqliteTelemetryStore(
            Path.Combine(sp.GetRequiredService<IOptions<FieldlineOptions>>().Value.DataDir, "telemetry.db"),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IOptions<SqliteTelemetryStoreOptions>>().Value,
            sp.GetRequiredService<ILogger<SqliteTelemetryStore>>()));
        services.Configure<TelemetryPipelineOptions>(configuration.GetSection("Telemetry:Pipeline"));
        services.AddSingleton<TelemetryPipeline>();
        services.AddSingleton<StorageLifetime>();
        services.AddHostedService(sp => sp.GetRequiredService<StorageLifetime>());
        services.AddSingleton<IReadinessCheck>(sp => sp.GetRequiredService<StorageLifetime>());
        services.AddOptions<TelemetryRetentionOptions>()
            .Configure<IOptions<FieldlineOptions>>((retention, fieldline) => retention.MaxAge = TimeSpan.FromDays(fieldline.Value.Telemetry.RetentionDays));
        services.AddHostedService<TelemetryRetentionService>();

        services.AddFieldlineConsole();
        services.AddSingleton<ConsoleSignIns>();
        services.AddSingleton<DeviceRegistrations>();
        services.AddSingleton<DeviceChanges>();

        services.AddSingleton<AdminApiKey>();
        services.AddSingleton<IAdminKeyVerifier>(sp => sp.GetRequiredService<AdminApiKey>());
        services.AddHostedService(sp => sp.GetRequiredService<AdminApiKey>());

        services.AddFieldlineBroker(configuration);
        services.AddFieldlineCoap();
        services.AddSingleton<ICommandTransport>(sp => CoapHosting.CommandTransports(sp, sp.GetRequiredService<DeviceCommandTopics>()));
        services.AddSingleton<IDeviceConnections>(sp => new AllDeviceConnections(
            [sp.GetRequiredService<BrokerDeviceConnections>(), sp.GetRequiredService<CoapDeviceSessions>()]));
        services.AddSingleton<IReadinessCheck, BrokerReadiness>();

        // After StorageLifetime: it reads the webhooks from the registry at start.
        services.AddHostedService(sp => sp.GetRequiredService<WebhookDispatcher>());
        services.AddHostedService<MqttEventPublisher>();

        services.AddSingleton(sp =>
        {
            var broker = sp.GetRequiredService<Mqtt.Server.MqttBroker>();
            var coap = sp.GetRequiredService<CoapListener>();
            return new TrafficHistory(sp.GetRequiredService<TimeProvider>(), () => (
                broker.MessagesReceived + (coap.Server?.MessagesReceived ?? 0),
                broker.MessagesSent + (coap.Server?.MessagesSent ?? 0)));
        });
        services.AddHostedService(sp => sp.GetRequiredService<TrafficHistory>());
        services.AddSingleton<SystemStats>();
    }

    /// <summary>
    /// Adds the MQTT listeners to Kestrel on <see cref="FieldlineOptions.Bind"/>: TCP on <see cref="FieldlineMqttOptions.Port"/>
    /// and, with <paramref name="tls"/>, TLS on <see cref="FieldlineMqttTlsOptions.Port"/>.
    /// </summary>
    internal static void ConfigureMqttListener(KestrelServerOptions kestrel, FieldlineOptions options, MqttTlsCertificates? tls, MqttListeners listeners)
    {
        var address = IPAddress.Parse(options.Bind);
        kestrel.ListenMqtt(address, options.Mqtt.Port, listen => listeners.Tcp = listen);
        if (tls is not null)
        {
            kestrel.ListenMqttTls(address, options.Mqtt.Tls.Port, tls.ServerCertificate, listen => listeners.Tls = listen);
        }
    }

    private static void MapEndpoints(WebApplication app)
    {
        app.UseFieldlineBrokerShutdown();
        app.UseWebSockets();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseFieldlineConsole();
        app.UseWhen(
            context => context.Request.Path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase),
            api => api.UseMiddleware<AdminKeyAuthentication>());

        app.MapHealthApi();
        app.MapMetrics();
        app.MapOpenApi();
        app.MapDevicesApi();
        app.MapShadowsApi();
        app.MapCommandsApi();
        app.MapEventsApi();
        app.MapSystemApi();
        app.MapWebhooksApi();
        app.MapServiceAccountsApi();
        app.MapTelemetryApi();
        app.MapMqttWebSocket();
        app.MapFieldlineConsole();
    }

    private static Uri LocalUrl(string scheme, string bind, int port)
    {
        var address = IPAddress.Parse(bind);
        var host = address.Equals(IPAddress.Any) ? "127.0.0.1"
            : address.Equals(IPAddress.IPv6Any) ? "[::1]"
            : address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]"
            : address.ToString();
        return new Uri($"{scheme}://{host}:{port}");
    }

    private async Task WriteBannerAsync(TextWriter output)
    {
        await output.WriteLineAsync("Fieldline is running.");
        await output.WriteLineAsync($"  HTTP:  {HttpUrl.GetLeftPart(UriPartial.Authority)}");
        if (MqttPort is { } mqttPort)
        {
            await output.WriteLineAsync($"  MQTT:  {LocalUrl("mqtt", Options.Bind, mqttPort).GetLeftPart(UriPartial.Authority)}");
        }

        if (MqttTlsPort is { } tlsPort && TlsCertificates is { } tls)
        {
            await output.WriteLineAsync($"  MQTTS: {LocalUrl("mqtts", Options.Bind, tlsPort).GetLeftPart(UriPartial.Authority)}");
            var kind = tls.IsDevelopmentCertificate ? "development certificate (self-signed; clients trust it with --cafile)" : "certificate";
            await output.WriteLineAsync($"  TLS {kind}: {tls.CertificatePath}");
            await output.WriteLineAsync($"  TLS certificate SHA-256 fingerprint: {tls.Fingerprint}");
        }

        await output.WriteLineAsync($"  MQTT over WebSocket: {MqttWebSocketUrl}");
        if (CoapPort is { } coapPort)
        {
            await output.WriteLineAsync($"  CoAP:  {LocalUrl("coap", Options.Bind, coapPort).GetLeftPart(UriPartial.Authority)} (UDP, not encrypted: DTLS is not supported yet)");
        }

        if (Options.Mqtt.AllowAnonymous)
        {
            await output.WriteLineAsync("  Anonymous MQTT clients are allowed (any topic outside sensor/, device/ and $).");
        }

        if (Services.GetRequiredService<AdminApiKey>().TakeGeneratedKey() is { } key)
        {
            await output.WriteLineAsync($"  Admin API key (shown once, store it now): {key}");
        }

        await output.FlushAsync();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Anonymous MQTT clients are allowed: anyone who reaches the broker may publish and subscribe outside sensor/, device/ and $ topics")]
    private static partial void LogAnonymousAllowed(ILogger logger);
}

/// <summary>The MQTT listeners as Kestrel bound them, so that ports chosen by the operating system can be read after start.</summary>
internal sealed class MqttListeners
{
    public ListenOptions? Tcp { get; set; }

    public ListenOptions? Tls { get; set; }
}
