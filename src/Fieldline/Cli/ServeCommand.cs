using System.CommandLine;
using System.Globalization;
using Fieldline.Hosting;
using Microsoft.Extensions.Options;

namespace Fieldline.Cli;

/// <summary><c>fieldline serve</c>: runs the broker, the REST API and the store until stopped.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        // Flags are nullable: a flag that is not given must not override appsettings.json or the environment.
        var dataDir = new Option<string?>("--data-dir") { Description = "Directory for the registry and telemetry (default ./data)." };
        var httpPort = new Option<int?>("--http-port") { Description = "REST API port; 0 picks a free port (default 8080)." };
        var mqttPort = new Option<int?>("--mqtt-port") { Description = "MQTT port; 0 picks a free port (default 1883)." };
        var mqttTlsPort = new Option<int?>("--mqtt-tls-port") { Description = "MQTT over TLS port; 0 picks a free port (default 8883)." };
        var noMqttTls = new Option<bool>("--no-mqtt-tls") { Description = "Do not listen for MQTT over TLS." };
        var mqttTlsCert = new Option<string?>("--mqtt-tls-cert") { Description = "TLS server certificate: PEM (with --mqtt-tls-key, or key in the same file) or PKCS#12 (.pfx). Default: a generated development certificate in the data directory." };
        var mqttTlsKey = new Option<string?>("--mqtt-tls-key") { Description = "PEM private key of --mqtt-tls-cert." };
        var mqttTlsClientCa = new Option<string?>("--mqtt-tls-client-ca") { Description = "PEM CA certificate(s): a client certificate issued by one, with a device id as CN, authenticates as that device." };
        var coapPort = new Option<int?>("--coap-port") { Description = "CoAP port (UDP, not encrypted); 0 picks a free port (default 5683)." };
        var noCoap = new Option<bool>("--no-coap") { Description = "Do not listen for CoAP." };
        var bind = new Option<string?>("--bind") { Description = "Address to listen on (default 0.0.0.0, all interfaces)." };
        var adminKey = new Option<string?>("--admin-key") { Description = "Admin API key; replaces the stored one." };
        var allowAnonymous = new Option<bool>("--allow-anonymous") { Description = "Let MQTT clients in without user name and password, to any topic outside sensor/, device/ and $ (default off)." };
        var anonymousDenyPublish = new Option<string[]>("--anonymous-deny-publish") { Description = "Topic filter anonymous clients may not publish to (repeatable).", AllowMultipleArgumentsPerToken = false };
        var anonymousDenySubscribe = new Option<string[]>("--anonymous-deny-subscribe") { Description = "Topic filter anonymous clients may not subscribe to or receive from (repeatable).", AllowMultipleArgumentsPerToken = false };
        var maxKeepAlive = new Option<int?>("--max-keep-alive") { Description = "Longest MQTT keep-alive in seconds; a client asking for more (or 0) is told this one in CONNACK (MQTT 5 Server Keep Alive). 0 for no limit (default)." };
        var maxConnections = new Option<int?>("--max-connections") { Description = "Most MQTT connections at once; 0 for no limit (default 100000)." };
        var maxPerAddress = new Option<int?>("--max-connections-per-address") { Description = "Most MQTT connections from one IP address; 0 for no limit (default 1000)." };
        var maxConnectRate = new Option<double?>("--max-connect-rate") { Description = "MQTT CONNECTs admitted per second, all clients together; 0 for no limit (default 1000)." };
        var maxSubscriptions = new Option<int?>("--max-subscriptions") { Description = "Most subscriptions per MQTT client; 0 for no limit (default 1000)." };
        var maxTopicLength = new Option<int?>("--max-topic-length") { Description = "Longest topic name or filter in bytes; 0 for MQTT's 65535 (default 4096)." };
        var maxTopicLevels = new Option<int?>("--max-topic-levels") { Description = "Most levels of a topic name or filter; 0 for no limit (default 128)." };

        var command = new Command("serve", "Run the Fieldline server.")
        {
            dataDir, httpPort, mqttPort, mqttTlsPort, noMqttTls, mqttTlsCert, mqttTlsKey, mqttTlsClientCa, coapPort, noCoap, bind, adminKey, allowAnonymous,
            anonymousDenyPublish, anonymousDenySubscribe, maxKeepAlive,
            maxConnections, maxPerAddress, maxConnectRate, maxSubscriptions, maxTopicLength, maxTopicLevels,
        };
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>();
            AddOverride(overrides, "DataDir", parseResult.GetValue(dataDir));
            AddOverride(overrides, "Http:Port", parseResult.GetValue(httpPort)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:Port", parseResult.GetValue(mqttPort)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:Tls:Port", parseResult.GetValue(mqttTlsPort)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:Tls:Enabled", parseResult.GetValue(noMqttTls) ? "false" : null);
            AddOverride(overrides, "Mqtt:Tls:CertificatePath", parseResult.GetValue(mqttTlsCert));
            AddOverride(overrides, "Mqtt:Tls:KeyPath", parseResult.GetValue(mqttTlsKey));
            AddOverride(overrides, "Mqtt:Tls:ClientCaPath", parseResult.GetValue(mqttTlsClientCa));
            AddOverride(overrides, "Coap:Port", parseResult.GetValue(coapPort)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Coap:Enabled", parseResult.GetValue(noCoap) ? "false" : null);
            AddOverride(overrides, "Bind", parseResult.GetValue(bind));
            AddOverride(overrides, "Security:AdminKey", parseResult.GetValue(adminKey));
            AddOverride(overrides, "Mqtt:AllowAnonymous", parseResult.GetValue(allowAnonymous) ? "true" : null);
            AddList(overrides, "Mqtt:AnonymousDenyPublish", parseResult.GetValue(anonymousDenyPublish));
            AddList(overrides, "Mqtt:AnonymousDenySubscribe", parseResult.GetValue(anonymousDenySubscribe));
            AddOverride(overrides, "Mqtt:MaximumKeepAliveSeconds", parseResult.GetValue(maxKeepAlive)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:MaximumConnections", parseResult.GetValue(maxConnections)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:MaximumConnectionsPerAddress", parseResult.GetValue(maxPerAddress)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:MaximumConnectRate", parseResult.GetValue(maxConnectRate)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:MaximumSubscriptionsPerClient", parseResult.GetValue(maxSubscriptions)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:MaximumTopicLength", parseResult.GetValue(maxTopicLength)?.ToString(CultureInfo.InvariantCulture));
            AddOverride(overrides, "Mqtt:MaximumTopicLevels", parseResult.GetValue(maxTopicLevels)?.ToString(CultureInfo.InvariantCulture));

            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            FieldlineApplication application;
            try
            {
                application = await FieldlineApplication.StartAsync(
                    new FieldlineStartup { ConfigurationOverrides = overrides, Output = output }, cancellationToken);
            }
            catch (OptionsValidationException e)
            {
                await error.WriteLineAsync($"fieldline: invalid configuration: {string.Join(" ", e.Failures)}");
                return FieldlineCommandLine.InvalidConfigurationExitCode;
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                await error.WriteLineAsync($"fieldline: failed to start: {e.Message}");
                return FieldlineCommandLine.StartFailedExitCode;
            }

            await using (application)
            {
                await application.WaitForShutdownAsync(cancellationToken);
            }

            return 0;
        });
        return command;
    }

    private static void AddList(Dictionary<string, string?> overrides, string key, string[]? values)
    {
        for (var i = 0; values is not null && i < values.Length; i++)
        {
            overrides[$"{key}:{i}"] = values[i];
        }
    }

    private static void AddOverride(Dictionary<string, string?> overrides, string key, string? value)
    {
        if (value is not null)
        {
            overrides[key] = value;
        }
    }
}
