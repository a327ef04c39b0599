namespace Fieldline.Simulator;

/// <summary>What <c>fieldline sim</c> runs.</summary>
internal sealed record SimulatorOptions
{
    public int Devices { get; init; } = 10;

    /// <summary>Messages per second per device.</summary>
    public double Rate { get; init; } = 1;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);

    public Uri ApiUrl { get; init; } = new("http://127.0.0.1:8080");

    public required string AdminKey { get; init; }

    public string MqttHost { get; init; } = "127.0.0.1";

    public int MqttPort { get; init; } = 1883;

    /// <summary>How the devices send: MQTT (the default) or CoAP.</summary>
    public SimulatorProtocol Protocol { get; init; } = SimulatorProtocol.Mqtt;

    public string CoapHost { get; init; } = "127.0.0.1";

    public int CoapPort { get; init; } = 5683;

    public string DevicePrefix { get; init; } = "sim";

    /// <summary>QoS of the telemetry messages (the seed publishes telemetry at QoS 1); over CoAP, 1 sends Confirmable requests and 0 Non-confirmable ones.</summary>
    public int Qos { get; init; } = 1;
}

/// <summary>The protocol simulated devices speak.</summary>
internal enum SimulatorProtocol
{
    Mqtt,
    Coap,
}
