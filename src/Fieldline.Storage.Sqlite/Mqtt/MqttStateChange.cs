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

    /// <summary>Cancelled by a later change of the same batch (<see cref="MqttStateBatchCoalescer"/>): nothing to write.</summary>
    Skipped,
}

/// <summary>
/// One change waiting for the writer. A struct in a reused list, so appending allocates nothing; <see cref="Item"/>
/// holds the object the caller passed (a session, subscription, delivery, message, filter or topic). For
/// <see cref="MqttStateChangeKind.PutDelivery"/>, <see cref="PacketId"/> and <see cref="State"/> are what is written
/// (the delivery's own, or those of an update folded into it).
/// </summary>
internal readonly struct MqttStateChange(MqttStateChangeKind kind, string? clientId, object? item, long sequence = 0, ushort packetId = 0, MqttDeliveryState state = default)
{
    public MqttStateChangeKind Kind { get; } = kind;

    public string? ClientId { get; } = clientId;

    public object? Item { get; } = item;

    public long Sequence { get; } = sequence;

    public ushort PacketId { get; } = packetId;

    public MqttDeliveryState State { get; } = state;

    /// <summary>This change with nothing to write.</summary>
    public MqttStateChange AsSkipped() => new(MqttStateChangeKind.Skipped, ClientId, null);

    /// <summary>This delivery's put, written with the packet id and state of a later update.</summary>
    public MqttStateChange WithDeliveryState(ushort newPacketId, MqttDeliveryState newState) => new(Kind, ClientId, Item, Sequence, newPacketId, newState);
}
