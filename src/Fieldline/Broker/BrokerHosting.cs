using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Fieldline.Core.Commands;
using Fieldline.Core.Devices;
using Fieldline.Core.ServiceAccounts;
using Fieldline.Core.Telemetry;
using Fieldline.Hosting;
using Fieldline.Mqtt.Persistence;
using Fieldline.Mqtt.Server;
using Fieldline.Storage.Sqlite;
using Fieldline.Storage.Sqlite.Mqtt;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;

namespace Fieldline.Broker;

/// <summary>Composes Fieldline's MQTT broker into the host: services, the Kestrel listener and shutdown.</summary>
internal static class BrokerHosting
{
    /// <summary>Registers the broker, its platform policy and what the policy needs.</summary>
    public static IServiceCollection AddFieldlineBroker(this IServiceCollection services, IConfiguration configuration)
    {
        var brokerOptions = new MqttBrokerOptions();
        configuration.GetSection("Mqtt").Bind(brokerOptions);
        services.AddSingleton(brokerOptions);
        services.AddSingleton<TelemetryPayloadParser>(_ => new TelemetryPayloadParser());
        services.AddSingleton<TelemetryIngest>();
        services.AddSingleton(sp => new DeviceAuthenticator(
            sp.GetRequiredService<IDeviceRegistry>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<DeviceAuthenticator>>())
        {
            ClientCertificateAuthorities = sp.GetService<MqttTlsCertificates>()?.ClientAuthorities,
        });
        services.AddSingleton(sp => new ServiceAccountAuthenticator(
            sp.GetRequiredService<IServiceAccountStore>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ServiceAccountAuthenticator>>()));
        services.AddSingleton<DeviceConnectionTracker>();
        services.AddHostedService(sp => sp.GetRequiredService<DeviceConnectionTracker>());
        services.AddSingleton<DeviceShadowTopics>();
        services.AddSingleton<DeviceCommandTopics>();
        services.AddSingleton<DeviceRequestTopics>();
        services.AddSingleton<ICommandStore, SqliteCommandStore>();
        services.AddSingleton<CommandService>();
        services.AddHostedService<CommandExpiryService>();
        services.AddSingleton<FieldlineMqttPolicy>();

        // Persistent sessions and retained messages live in broker.db next to the other stores.
        services.AddSingleton<IMqttStateStore>(sp => new SqliteMqttStateStore(
            Path.Combine(sp.GetRequiredService<IOptions<FieldlineOptions>>().Value.DataDir, "broker.db"),
            sp.GetRequiredService<ILogger<SqliteMqttStateStore>>()));
        services.AddSingleton(sp => new MqttBroker(
            sp.GetRequiredService<MqttBrokerOptions>(),
            sp.GetRequiredService<FieldlineMqttPolicy>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetRequiredService<IMeterFactory>(),
            sp.GetRequiredService<IMqttStateStore>()));
        services.AddSingleton<MqttConnectionHandler>();
        services.AddSingleton<BrokerDeviceConnections>();
        services.AddSingleton<IServiceAccountConnections, BrokerServiceAccountConnections>();
        return services;
    }

    /// <summary>Adds the MQTT listener (MQTT over TCP) to Kestrel.</summary>
    public static void ListenMqtt(this KestrelServerOptions kestrel, IPAddress address, int port, Action<ListenOptions>? bound = null) =>
        kestrel.Listen(address, port, listen =>
        {
            listen.UseConnectionHandler<MqttConnectionHandler>();
            bound?.Invoke(listen);
        });

    /// <summary>
    /// Adds the MQTT over TLS listener to Kestrel. A client certificate is asked for, not required: devices with a
    /// token connect without one. Any certificate passes the handshake, which proves the client holds its key; the
    /// policy decides whether it identifies a device (a registered fingerprint, or a CN under a configured CA).
    /// </summary>
    public static void ListenMqttTls(this KestrelServerOptions kestrel, IPAddress address, int port, X509Certificate2 certificate, Action<ListenOptions>? bound = null) =>
        kestrel.Listen(address, port, listen =>
        {
            listen.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = certificate,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = static (_, _, _) => true,
                HandshakeTimeout = TimeSpan.FromSeconds(10),

                // Kestrel offers h2 and http/1.1 by ALPN, and a client asking for another protocol (mosquitto's
                // --tls-alpn mqtt) would be refused for lack of a common one. MQTT does not need ALPN: offer none.
                OnAuthenticate = static (_, ssl) => ssl.ApplicationProtocols = null,
            });
            listen.UseConnectionHandler<MqttConnectionHandler>();
            bound?.Invoke(listen);
        });

    /// <summary>Closes MQTT connections as soon as the host begins to stop, so that Kestrel's shutdown does not wait on them.</summary>
    public static void UseFieldlineBrokerShutdown(this WebApplication app)
    {
        var broker = app.Services.GetRequiredService<MqttBroker>();
        app.Lifetime.ApplicationStopping.Register(() => broker.DisposeAsync().AsTask().GetAwaiter().GetResult());
    }
}
