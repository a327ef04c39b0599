using Fieldline.Mqtt.Persistence;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>What a queued change does.</summary>
internal enum MqttStateChangeKind : byte
{
    PutSession,
    RemoveSession,
    PutSubscription,
    RemoveSubscription,
    PutDelivery,
    UpdateDelivery,
    RemoveDelivery,
    PutIncomingQos2,
    RemoveIncomingQos2,
    PutRetained,
    RemoveRetained,
}

/// <summary>
/// One change waiting for the writer. A struct in a reused list, so appending allocates nothing; <see cref="Item"/>
/// holds the object the caller passed (a session, subscription, delivery, message, filter or topic).
/// </summary>
internal readonly struct MqttStateChange(MqttStateChangeKind kind, string? clientId, object? item, long sequence = 0, ushort packetId = 0, MqttDeliveryState state = default)
{
    public MqttStateChangeKind Kind { get; } = kind;

    public string? ClientId { get; } = clientId;

    public object? Item { get; } = item;

    public long Sequence { get; } = sequence;

    public ushort PacketId { get; } = packetId;

    public MqttDeliveryState State { get; } = state;
}
