using System.Runtime.InteropServices;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>
/// Cancels out, within one batch of changes, the writes of a delivery whose whole life fits in the batch.
/// </summary>
/// <remarks>
/// Design note. A QoS 1 message for a connected persistent subscriber is put (queued), updated (sent with its
/// packet id) and removed (PUBACK) within a round trip of the subscriber, often before the writer has committed
/// the put: written one by one that is five statements (content, delivery, update, delete delivery, delete
/// content) for a row that is gone when the transaction commits. This pass runs on the writer thread before the
/// batch is applied: an update of a delivery put earlier in the batch is folded into the put, and a removal of a
/// delivery put earlier in the batch cancels the put, its folded updates and itself. What is committed is the
/// same as applying every change in order, so the acknowledgement rule is unchanged: a publisher's PUBACK still
/// waits for the commit of the batch that held its message, which by then is either stored or already
/// acknowledged by the subscriber. Batches grow while the writer is busy, so the busier the store, the more of
/// its work cancels out. A session removal forgets every pending put (their rows go with the session anyway, and
/// a new session of the same client id may reuse sequence numbers).
/// </remarks>
internal sealed class MqttStateBatchCoalescer
{
    private const int RetainedCapacity = 4096;

    // (client id, sequence) of a delivery put in this batch → the index of its put.
    private readonly Dictionary<(string ClientId, long Sequence), int> pendingPuts = [];

    /// <summary>Rewrites <paramref name="changes"/> in place; returns how many changes are left to write.</summary>
    public int Coalesce(List<MqttStateChange> changes)
    {
        var span = CollectionsMarshal.AsSpan(changes);
        var remaining = span.Length;
        pendingPuts.Clear();
        for (var i = 0; i < span.Length; i++)
        {
            ref var change = ref span[i];
            switch (change.Kind)
            {
                case MqttStateChangeKind.PutDelivery:
                    pendingPuts[(change.ClientId!, change.Sequence)] = i;
                    break;
                case MqttStateChangeKind.UpdateDelivery:
                    if (pendingPuts.TryGetValue((change.ClientId!, change.Sequence), out var put))
                    {
                        span[put] = span[put].WithDeliveryState(change.PacketId, change.State);
                        change = change.AsSkipped();
                        remaining--;
                    }

                    break;
                case MqttStateChangeKind.RemoveDelivery:
                    if (pendingPuts.Remove((change.ClientId!, change.Sequence), out var cancelled))
                    {
                        span[cancelled] = span[cancelled].AsSkipped();
                        change = change.AsSkipped();
                        remaining -= 2;
                    }

                    break;
                case MqttStateChangeKind.RemoveSession:
                    pendingPuts.Clear();
                    break;
            }
        }

        // The keys hold client id strings; a quiet store should not keep the last burst's alive, nor its table.
        var tracked = pendingPuts.Count;
        pendingPuts.Clear();
        if (tracked > RetainedCapacity)
        {
            pendingPuts.TrimExcess(RetainedCapacity);
        }

        return remaining;
    }
}
