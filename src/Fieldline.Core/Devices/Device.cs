namespace Fieldline.Core.Devices;

/// <summary>What kind of thing a device is (the seed's <c>Device.Type</c>).</summary>
public enum DeviceType
{
    Sensor,
    Actuator,
    Gateway,
}

/// <summary>A device's lifecycle status (the seed's <c>DeviceStatus</c>).</summary>
public enum DeviceStatus
{
    Online,
    Offline,
    Maintenance,
    Error,
}

/// <summary>A registered device, as the seed's <c>Device</c>. Serialized as snake_case JSON by the API.</summary>
public sealed record Device
{
    public required string DeviceId { get; init; }
    public required string Name { get; init; }
    public required DeviceType Type { get; init; }
    public string? Model { get; init; }
    public string? FirmwareVersion { get; init; }
    public DeviceStatus Status { get; init; } = DeviceStatus.Offline;
    public string? Location { get; init; }
    public DateTimeOffset? LastSeen { get; init; }
    public DateTimeOffset RegisteredAt { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The SHA-256 fingerprint (lowercase hex) of the DER certificate the device may present over TLS instead of
    /// its token; null when it has none (see <see cref="DeviceCertificates"/>).
    /// </summary>
    public string? CertificateFingerprint { get; init; }
}
