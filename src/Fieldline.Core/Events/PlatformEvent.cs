using System.Globalization;
using System.Text.Json.Nodes;

namespace Fieldline.Core.Events;

/// <summary>The event types of the seed's event-driven architecture that the platform raises.</summary>
public static class EventTypes
{
    public const string DeviceRegistered = "DeviceRegistered";
    public const string DeviceDeleted = "DeviceDeleted";
    public const string DeviceConnected = "DeviceConnected";
    public const string DeviceDisconnected = "DeviceDisconnected";
    public const string DataReceived = "DataReceived";
    public const string ShadowUpdated = "ShadowUpdated";
    public const string CommandStateChanged = "CommandStateChanged";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
    {
        DeviceRegistered, DeviceDeleted, DeviceConnected, DeviceDisconnected, DataReceived, ShadowUpdated, CommandStateChanged,
    };
}

/// <summary>
/// An event as the seed's <c>Event</c>: <c>event_id</c>, <c>event_type</c>, <c>source</c> (also as the seed's
/// <c>source_service</c>), <c>timestamp</c>, <c>payload</c> and <c>metadata</c> (the device id when the event concerns
/// one device). <see cref="Sequence"/> orders the events of this process; the event id is it in decimal, which is
/// also the SSE id a client resumes from.
/// </summary>
public sealed record PlatformEvent(long Sequence, string EventType, string Source, DateTimeOffset Timestamp, string? DeviceId, JsonObject Payload)
{
    public string EventId => Sequence.ToString(CultureInfo.InvariantCulture);

    public JsonObject ToJson() => new()
    {
        ["event_id"] = EventId,
        ["event_type"] = EventType,
        ["source"] = Source,
        ["source_service"] = Source,
        ["timestamp"] = Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
        ["payload"] = Payload.DeepClone(),
        ["metadata"] = DeviceId is null ? new JsonObject() : new JsonObject { ["device_id"] = DeviceId },
    };
}
