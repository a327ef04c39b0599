using System.Text.Json.Nodes;

namespace Fieldline.Core.Shadows;

/// <summary>
/// A device's shadow, as the seed's <c>Shadow</c>: the state the cloud wants (<see cref="Desired"/>), the state the
/// device last reported (<see cref="Reported"/>), the difference (<see cref="Delta"/>), a timestamp per key in
/// <see cref="DesiredMetadata"/> and <see cref="ReportedMetadata"/>, and a <see cref="Version"/> that grows with each
/// accepted change. Version 0 is a shadow that was never written.
/// </summary>
public sealed class DeviceShadow
{
    public DeviceShadow(string deviceId, long version, JsonObject desired, JsonObject reported, JsonObject desiredMetadata, JsonObject reportedMetadata, DateTimeOffset? updatedAt)
    {
        DeviceId = deviceId;
        Version = version;
        Desired = desired;
        Reported = reported;
        DesiredMetadata = desiredMetadata;
        ReportedMetadata = reportedMetadata;
        UpdatedAt = updatedAt;
        Delta = ShadowDocuments.ComputeDelta(desired, reported);
    }

    public string DeviceId { get; }

    public long Version { get; }

    public JsonObject Desired { get; }

    public JsonObject Reported { get; }

    /// <summary>Desired keys whose value differs from the reported one (nested objects compared key by key).</summary>
    public JsonObject Delta { get; }

    public JsonObject DesiredMetadata { get; }

    public JsonObject ReportedMetadata { get; }

    /// <summary>When the last accepted change was made; null for a shadow never written.</summary>
    public DateTimeOffset? UpdatedAt { get; }

    /// <summary>A shadow with nothing in it.</summary>
    public static DeviceShadow Empty(string deviceId) => new(deviceId, 0, [], [], [], [], null);

    /// <summary>
    /// The document as the API and the device topics show it:
    /// <c>{"state":{"desired","reported","delta"},"metadata":{"desired","reported"},"version","timestamp"}</c>
    /// (timestamps in Unix seconds, as AWS IoT's).
    /// </summary>
    public JsonObject ToDocument() => new()
    {
        ["state"] = new JsonObject
        {
            ["desired"] = Desired.DeepClone(),
            ["reported"] = Reported.DeepClone(),
            ["delta"] = Delta.DeepClone(),
        },
        ["metadata"] = new JsonObject
        {
            ["desired"] = DesiredMetadata.DeepClone(),
            ["reported"] = ReportedMetadata.DeepClone(),
        },
        ["version"] = Version,
        ["timestamp"] = UpdatedAt?.ToUnixTimeSeconds(),
    };

    /// <summary>What the store keeps: the two sections and their metadata (the delta is derived).</summary>
    public string ToStoredJson() => new JsonObject
    {
        ["desired"] = Desired.DeepClone(),
        ["reported"] = Reported.DeepClone(),
        ["metadata"] = new JsonObject { ["desired"] = DesiredMetadata.DeepClone(), ["reported"] = ReportedMetadata.DeepClone() },
    }.ToJsonString();

    /// <summary>Reads what <see cref="ToStoredJson"/> wrote.</summary>
    public static DeviceShadow FromStored(StoredShadow stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        var document = JsonNode.Parse(stored.Document) as JsonObject ?? throw new InvalidDataException($"The stored shadow of '{stored.DeviceId}' is not a JSON object.");
        var metadata = document["metadata"] as JsonObject;
        return new DeviceShadow(
            stored.DeviceId,
            stored.Version,
            Section(document, "desired"),
            Section(document, "reported"),
            metadata is null ? [] : Section(metadata, "desired"),
            metadata is null ? [] : Section(metadata, "reported"),
            stored.UpdatedAt);
    }

    private static JsonObject Section(JsonObject parent, string name) => parent[name] is JsonObject section ? (JsonObject)section.DeepClone() : [];
}

/// <summary>A shadow as the store keeps it.</summary>
/// <param name="DeviceId">The device.</param>
/// <param name="Version">Its version (1 or more).</param>
/// <param name="Document">The JSON of <see cref="DeviceShadow.ToStoredJson"/>.</param>
/// <param name="UpdatedAt">When it was last changed.</param>
public sealed record StoredShadow(string DeviceId, long Version, string Document, DateTimeOffset UpdatedAt);

/// <summary>Where shadows are kept.</summary>
public interface IShadowStore
{
    /// <summary>The stored shadow of a device, or null when it has none.</summary>
    Task<StoredShadow?> GetAsync(string deviceId, CancellationToken cancellationToken);

    /// <summary>
    /// Writes <paramref name="shadow"/> if the stored version is still <paramref name="expectedVersion"/> (0: no
    /// shadow stored yet). False when another writer got there first.
    /// </summary>
    Task<bool> SaveAsync(StoredShadow shadow, long expectedVersion, CancellationToken cancellationToken);

    /// <summary>Removes a device's shadow; false when it had none.</summary>
    Task<bool> DeleteAsync(string deviceId, CancellationToken cancellationToken);
}
