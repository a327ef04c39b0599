using System.Collections.Concurrent;

namespace Fieldline.Core.Shadows;

/// <summary>
/// The shadows this process wrote last, as stored, by device. Only a hint for the next write, which is conditional on
/// the version: a stale entry costs a failed write and a read, never a wrong shadow. Reads for callers always go
/// to the store, so that several instances see the same shadow.
/// </summary>
internal sealed class RecentShadows(int capacity)
{
    private readonly ConcurrentDictionary<string, StoredShadow> _shadows = new(StringComparer.Ordinal);

    public StoredShadow? Get(string deviceId) => _shadows.TryGetValue(deviceId, out var shadow) ? shadow : null;

    public void Remember(StoredShadow shadow)
    {
        if (capacity <= 0)
        {
            return;
        }

        if (_shadows.Count >= capacity && !_shadows.ContainsKey(shadow.DeviceId))
        {
            // Full: forget a tenth, whichever the enumeration meets first. Cheaper than keeping an LRU order on every
            // write, and a forgotten shadow only costs one read at its device's next update.
            foreach (var deviceId in _shadows.Keys.Take(Math.Max(1, capacity / 10)))
            {
                _shadows.TryRemove(deviceId, out _);
            }
        }

        _shadows[shadow.DeviceId] = shadow;
    }

    public void Forget(string deviceId) => _shadows.TryRemove(deviceId, out _);
}
