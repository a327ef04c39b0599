using System.Runtime.InteropServices;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>
/// Where each stored delivery's row is: (client id, sequence) → the row id the writer gave it.
/// </summary>
/// <remarks>
/// Design note. Delivery rows are keyed by an increasing integer that the writer assigns, not by (client id,
/// sequence): a new row then always lands at the end of the table's B-tree, and the rows removed are mostly the
/// oldest ones, at its start, whatever the number of sessions. Keyed by (client id, sequence), 500 sessions with
/// queued messages made every commit dirty 500 pages spread over the file, and publishing to offline sessions
/// slowed to a crawl once the table outgrew the page cache. The price is this index in memory, about 50 bytes
/// per stored delivery (the broker holds the message itself in memory anyway), rebuilt from the table at open
/// and after a failed batch. It is also how a session's rows are found when the session is removed, without a
/// scan of the table.
/// </remarks>
internal sealed class DeliveryRowIndex
{
    private readonly Dictionary<string, Dictionary<long, long>> rowsByClient = new(StringComparer.Ordinal);

    /// <summary>The highest row id given out.</summary>
    public long LastRowId { get; private set; }

    public int Count { get; private set; }

    public void Clear()
    {
        rowsByClient.Clear();
        LastRowId = 0;
        Count = 0;
    }

    /// <summary>Records a row read from the table.</summary>
    public void Add(string clientId, long sequence, long rowId)
    {
        Rows(clientId)[sequence] = rowId;
        LastRowId = Math.Max(LastRowId, rowId);
        Count++;
    }

    /// <summary>Gives (client id, sequence) a new row id; <paramref name="replaced"/> is the row it had, or 0.</summary>
    public long Assign(string clientId, long sequence, out long replaced)
    {
        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(Rows(clientId), sequence, out var existed);
        replaced = existed ? slot : 0;
        if (!existed)
        {
            Count++;
        }

        slot = ++LastRowId;
        return slot;
    }

    public bool TryGet(string clientId, long sequence, out long rowId)
    {
        rowId = 0;
        return rowsByClient.TryGetValue(clientId, out var rows) && rows.TryGetValue(sequence, out rowId);
    }

    public bool Remove(string clientId, long sequence, out long rowId)
    {
        rowId = 0;
        if (!rowsByClient.TryGetValue(clientId, out var rows) || !rows.Remove(sequence, out rowId))
        {
            return false;
        }

        Count--;
        if (rows.Count == 0)
        {
            rowsByClient.Remove(clientId);
        }

        return true;
    }

    /// <summary>Forgets every row of a client; returns them (null when it had none).</summary>
    public ICollection<long>? RemoveClient(string clientId)
    {
        if (!rowsByClient.Remove(clientId, out var rows))
        {
            return null;
        }

        Count -= rows.Count;
        return rows.Values;
    }

    private Dictionary<long, long> Rows(string clientId)
    {
        ref var rows = ref CollectionsMarshal.GetValueRefOrAddDefault(rowsByClient, clientId, out _);
        return rows ??= [];
    }
}
