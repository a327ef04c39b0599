namespace Fieldline.Core.Devices;

/// <summary>
/// A filter and page request over the registry. Results are ordered by <paramref name="Order"/> and then by
/// device_id, so every order is stable and pages never skip or repeat a device.
/// </summary>
/// <param name="Type">Only devices of this type, when set.</param>
/// <param name="Status">Only devices in this status, when set.</param>
/// <param name="Limit">At most this many devices (1..1000).</param>
/// <param name="After">
/// Exclusive cursor: the <see cref="DevicePage.NextCursor"/> of the previous page. In <see cref="DeviceOrder.Id"/>
/// order it is the last device_id of that page; in the other orders it is opaque.
/// </param>
/// <param name="IdPrefix">Only devices whose id starts with this, when set (a range of the id index, not a scan).</param>
/// <param name="Search">Only devices whose id starts with this or whose name contains it, ignoring case, when set.</param>
/// <param name="Order">What the devices are sorted by.</param>
/// <param name="Descending">Whether the order is reversed.</param>
public sealed record DeviceQuery(
    DeviceType? Type,
    DeviceStatus? Status,
    int Limit,
    string? After,
    string? IdPrefix = null,
    string? Search = null,
    DeviceOrder Order = DeviceOrder.Id,
    bool Descending = false);

/// <summary>What a device listing is sorted by (then by device_id).</summary>
public enum DeviceOrder
{
    Id,
    Name,

    /// <summary>By last_seen; devices never seen count as the oldest.</summary>
    LastSeen,
}

/// <summary>One page of devices; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record DevicePage(IReadOnlyList<Device> Items, string? NextCursor);

/// <summary>The outcome of a registry write.</summary>
public enum RegistryWriteResult
{
    Ok,
    NotFound,
    Conflict,

    /// <summary>The certificate fingerprint is registered to another device.</summary>
    CertificateInUse,
    /// <summary>The name is taken by another kind of MQTT principal: a device id that is a service account's user name, or the reverse.</summary>
    NameTaken,
}

/// <summary>
/// The durable device registry. Device tokens are never stored: only their hashes
/// (see <see cref="DeviceTokens"/>).
/// </summary>
public interface IDeviceRegistry
{
    /// <summary>
    /// Registers a device with the hash of its token; <see cref="RegistryWriteResult.Conflict"/> when the id exists,
    /// <see cref="RegistryWriteResult.CertificateInUse"/> when its certificate fingerprint belongs to another device.
    /// <see cref="RegistryWriteResult.NameTaken"/> when it is a service account's user name.
    /// </summary>
    Task<RegistryWriteResult> CreateAsync(Device device, byte[] tokenHash, CancellationToken cancellationToken);

    Task<Device?> GetAsync(string deviceId, CancellationToken cancellationToken);

    Task<DevicePage> ListAsync(DeviceQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the mutable fields (name, type, model, firmware_version, status, location, metadata,
    /// certificate_fingerprint); <see cref="RegistryWriteResult.CertificateInUse"/> when the fingerprint belongs to another device.
    /// </summary>
    Task<RegistryWriteResult> UpdateAsync(Device device, CancellationToken cancellationToken);

    Task<RegistryWriteResult> DeleteAsync(string deviceId, CancellationToken cancellationToken);

    Task<RegistryWriteResult> SetTokenHashAsync(string deviceId, byte[] tokenHash, CancellationToken cancellationToken);

    /// <summary>The stored token hash and status of a device, for authentication; null when unknown.</summary>
    Task<DeviceCredentials?> GetCredentialsAsync(string deviceId, CancellationToken cancellationToken);

    /// <summary>
    /// The device whose token has this hash, for protocols that present only a token (CoAP's
    /// <c>/api/v1/{token}/...</c>); null when none.
    /// </summary>
    Task<DeviceCredentials?> FindByTokenHashAsync(byte[] tokenHash, CancellationToken cancellationToken);

    /// <summary>The device whose registered certificate has this fingerprint (lowercase hex SHA-256), for authentication; null when none.</summary>
    Task<DeviceCredentials?> FindByCertificateFingerprintAsync(string fingerprint, CancellationToken cancellationToken);

    /// <summary>Records a status change (and last_seen) caused by the device's connection.</summary>
    Task SetConnectionStatusAsync(string deviceId, DeviceStatus status, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Number of devices per (status, type), for the iot_device_total gauge.</summary>
    Task<IReadOnlyDictionary<(DeviceStatus Status, DeviceType Type), long>> CountAsync(CancellationToken cancellationToken);

    /// <summary>The most recent status changes of a device, newest first; empty when the device is unknown.</summary>
    Task<IReadOnlyList<DeviceStatusChange>> GetStatusHistoryAsync(string deviceId, int limit, CancellationToken cancellationToken);
}

/// <summary>One entry of a device's status history: the status it entered and when.</summary>
public sealed record DeviceStatusChange(DeviceStatus Status, DateTimeOffset At);

/// <summary>What authentication needs to know about a device.</summary>
public sealed record DeviceCredentials(string DeviceId, byte[] TokenHash, DeviceStatus Status);
