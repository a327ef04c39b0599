using System.CommandLine;
using Fieldline.Simulator;

namespace Fieldline.Cli;

/// <summary><c>fieldline sim</c>: simulated sensors publishing telemetry to a running Fieldline.</summary>
internal static class SimCommand
{
    public static Command Create()
    {
        var devices = new Option<int>("--devices") { Description = "Number of simulated devices.", DefaultValueFactory = _ => 10 };
        var rate = new Option<double>("--rate") { Description = "Messages per second per device.", DefaultValueFactory = _ => 1 };
        var duration = new Option<TimeSpan>("--duration")
        {
            Description = "How long to publish: 30s, 5m, 1h or plain seconds.",
            DefaultValueFactory = _ => TimeSpan.FromSeconds(30),
            CustomParser = result => DurationParser.TryParse(result.Tokens.Single().Value, out var value)
                ? value
                : ReportError<TimeSpan>(result, $"'{result.Tokens.Single().Value}' is not a duration such as 30s, 5m or 1h."),
        };
        var url = new Option<Uri>("--url")
        {
            Description = "Fieldline's HTTP address.",
            DefaultValueFactory = _ => new Uri("http://127.0.0.1:8080"),
            CustomParser = result => Uri.TryCreate(result.Tokens.Single().Value, UriKind.Absolute, out var value) && value.Scheme is "http" or "https"
                ? value
                : ReportError<Uri>(result, $"'{result.Tokens.Single().Value}' is not an http:// or https:// address."),
        };
        var adminKey = new Option<string?>("--admin-key") { Description = "Admin API key (or FIELDLINE_ADMIN_KEY)." };
        var mqttHost = new Option<string>("--mqtt-host") { Description = "MQTT host.", DefaultValueFactory = _ => "127.0.0.1" };
        var mqttPort = new Option<int>("--mqtt-port") { Description = "MQTT port.", DefaultValueFactory = _ => 1883 };
        var protocol = new Option<SimulatorProtocol>("--protocol") { Description = "How the devices send: mqtt or coap.", DefaultValueFactory = _ => SimulatorProtocol.Mqtt };
        var coapHost = new Option<string>("--coap-host") { Description = "CoAP host.", DefaultValueFactory = _ => "127.0.0.1" };
        var coapPort = new Option<int>("--coap-port") { Description = "CoAP port (UDP).", DefaultValueFactory = _ => 5683 };
        var prefix = new Option<string>("--prefix") { Description = "Device id prefix.", DefaultValueFactory = _ => "sim" };
        var qos = new Option<int>("--qos") { Description = "QoS of telemetry messages (0 or 1).", DefaultValueFactory = _ => 1 };

        var command = new Command("sim", "Simulate sensors that send telemetry over MQTT or CoAP.")
        {
            devices, rate, duration, url, adminKey, protocol, mqttHost, mqttPort, coapHost, coapPort, prefix, qos,
        };
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var key = parseResult.GetValue(adminKey) ?? Environment.GetEnvironmentVariable("FIELDLINE_ADMIN_KEY");
            var error = parseResult.InvocationConfiguration.Error;
            if (string.IsNullOrEmpty(key))
            {
                await error.WriteLineAsync("fieldline sim: an admin key is needed to register devices (--admin-key or FIELDLINE_ADMIN_KEY).");
                return FieldlineCommandLine.InvalidConfigurationExitCode;
            }

            var options = new SimulatorOptions
            {
                Devices = parseResult.GetValue(devices),
                Rate = parseResult.GetValue(rate),
                Duration = parseResult.GetValue(duration),
                ApiUrl = parseResult.GetValue(url)!,
                AdminKey = key,
                MqttHost = parseResult.GetValue(mqttHost)!,
                MqttPort = parseResult.GetValue(mqttPort),
                Protocol = parseResult.GetValue(protocol),
                CoapHost = parseResult.GetValue(coapHost)!,
                CoapPort = parseResult.GetValue(coapPort),
                DevicePrefix = parseResult.GetValue(prefix)!,
                Qos = parseResult.GetValue(qos),
            };
            if (options.Devices < 1 || options.Rate <= 0 || options.Duration <= TimeSpan.Zero || options.Qos is < 0 or > 1)
            {
                await error.WriteLineAsync("fieldline sim: --devices must be at least 1, --rate and --duration positive, --qos 0 or 1.");
                return FieldlineCommandLine.InvalidConfigurationExitCode;
            }

            try
            {
                return await new DeviceSimulator(options, parseResult.InvocationConfiguration.Output).RunAsync(cancellationToken);
            }
            catch (HttpRequestException e)
            {
                await error.WriteLineAsync($"fieldline sim: the API at {options.ApiUrl} failed: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static T ReportError<T>(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default!;
    }
}
