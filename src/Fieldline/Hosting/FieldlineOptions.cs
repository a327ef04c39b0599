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

    public FieldlineCoapOptions Coap { get; set; } = new();

    public FieldlineSecurityOptions Security { get; set; } = new();

    public FieldlineTelemetryOptions Telemetry { get; set; } = new();

    public FieldlineShadowOptions Shadows { get; set; } = new();

    public FieldlineEventOptions Events { get; set; } = new();
}

/// <summary>The event stream.</summary>
internal sealed class FieldlineEventOptions
{
    /// <summary>
    /// A device's telemetry is reported as one DataReceived event per this many seconds (counts and each metric's
    /// latest value), not one event per point.
    /// </summary>
    public int DataReceivedWindowSeconds { get; set; } = 10;
}

/// <summary>Device shadows (the size limits of the same section are bound into <see cref="Core.Shadows.ShadowLimits"/>).</summary>
internal sealed class FieldlineShadowOptions
{
    /// <summary>
    /// Device types (sensor, actuator, gateway) whose telemetry also updates the shadow's reported state, each
    /// metric's latest value under its name. None by default: a shadow write per message is too dear for
    /// high-rate metrics.
    /// </summary>
    public string[] TelemetryToReported { get; set; } = [];
}

/// <summary>The REST API listener.</summary>
internal sealed class FieldlineHttpOptions
{
    /// <summary>TCP port; 0 lets the operating system pick a free one.</summary>
    public int Port { get; set; } = 8080;
}

/// <summary>
/// The MQTT broker's listeners (plain TCP here, TLS in <see cref="Tls"/>; MQTT over WebSocket is on the HTTP port at
/// /mqtt) and access. The broker's limits (<c>Mqtt:MaximumConnections</c> ...) are bound from the same section into
/// <see cref="Mqtt.Server.MqttBrokerOptions"/>.
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

    /// <summary>Topic filters anonymous clients may not publish to (as a mosquitto ACL's deny entries).</summary>
    public string[] AnonymousDenyPublish { get; set; } = [];

    /// <summary>
    /// Topic filters anonymous clients may not subscribe to: a subscription within one is refused, and a broader
    /// one never delivers a topic one of them matches.
    /// </summary>
    public string[] AnonymousDenySubscribe { get; set; } = [];
    public FieldlineMqttTlsOptions Tls { get; set; } = new();
}

/// <summary>
/// The MQTT over TLS listener. Its certificate is <see cref="CertificatePath"/> (a PEM certificate with
/// <see cref="KeyPath"/>, a PEM file holding both, or a PKCS#12/PFX file); without one, a self-signed development
/// certificate is generated in the data directory on first start and reused.
/// </summary>
internal sealed class FieldlineMqttTlsOptions
{
    /// <summary>Whether the TLS listener runs.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>TCP port; 0 lets the operating system pick a free one.</summary>
    public int Port { get; set; } = 8883;

    /// <summary>The server certificate: PEM (with <see cref="KeyPath"/> or its key in the same file) or PKCS#12.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary>The password of a PKCS#12 file or of an encrypted PEM key.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>
    /// PEM certificates of the authorities whose client certificates identify a device by their CN. Unset, a
    /// client certificate identifies a device only by a fingerprint registered to it.
    /// </summary>
    public string? ClientCaPath { get; set; }
}

/// <summary>The CoAP listener (UDP) for devices too small for MQTT. Not encrypted: DTLS is not supported yet.</summary>
internal sealed class FieldlineCoapOptions
{
    /// <summary>Whether the CoAP listener runs.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>UDP port; 0 lets the operating system pick a free one.</summary>
    public int Port { get; set; } = 5683;

    /// <summary>
    /// A device that neither sends a CoAP request nor observes a resource for this many seconds is marked offline
    /// (ThingsBoard's inactivity timeout plays the same part).
    /// </summary>
    public int IdleTimeoutSeconds { get; set; } = 600;
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
