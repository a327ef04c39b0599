namespace Fieldline.Hosting;

/// <summary>
/// The whole configuration of a Fieldline process, bound from the configuration root:
/// appsettings.json, then <c>FIELDLINE__Section__Key</c> environment variables, then command-line flags.
/// </summary>
internal sealed class FieldlineOptions
{
    /// <summary>Directory holding the registry and the telemetry store; relative paths are resolved against the working directory.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary>The address both listeners bind to; 0.0.0.0 means all IPv4 interfaces.</summary>
    public string Bind { get; set; } = "0.0.0.0";

    public FieldlineHttpOptions Http { get; set; } = new();

    public FieldlineMqttOptions Mqtt { get; set; } = new();

    public FieldlineSecurityOptions Security { get; set; } = new();

    public FieldlineTelemetryOptions Telemetry { get; set; } = new();
}

/// <summary>The REST API listener.</summary>
internal sealed class FieldlineHttpOptions
{
    /// <summary>TCP port; 0 lets the operating system pick a free one.</summary>
    public int Port { get; set; } = 8080;
}

/// <summary>
/// The MQTT broker listener and access. The broker's limits (<c>Mqtt:MaximumConnections</c> ...) are bound from the
/// same section into <see cref="Mqtt.Server.MqttBrokerOptions"/>.
/// </summary>
internal sealed class FieldlineMqttOptions
{
    /// <summary>TCP port; 0 lets the operating system pick a free one.</summary>
    public int Port { get; set; } = 1883;

    /// <summary>
    /// Lets clients without user name and password in, to any topic outside the platform's (<c>sensor/</c>,
    /// <c>device/</c>, '$'), so that the broker can serve as a plain MQTT broker. Off by default.
    /// </summary>
    public bool AllowAnonymous { get; set; }
}

/// <summary>Administrative access.</summary>
internal sealed class FieldlineSecurityOptions
{
    /// <summary>
    /// When set, this key replaces the stored admin key hash at start. When empty, the stored hash is used,
    /// or a key is generated and printed once on first start.
    /// </summary>
    public string? AdminKey { get; set; }
}

/// <summary>The telemetry store.</summary>
internal sealed class FieldlineTelemetryOptions
{
    /// <summary>Points older than this many days are deleted.</summary>
    public int RetentionDays { get; set; } = 30;
}
