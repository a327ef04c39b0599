using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Threading.Channels;

namespace Fieldline.Core.Telemetry;

/// <summary>
/// Telemetry of one device as it arrives, for whoever watches that device now (the web console's device page, an
/// API client's live stream). Points are passed on once they are durable, so a watcher never sees a value that a
/// later read would not return.
/// </summary>
/// <remarks>
/// Design note. <see cref="Publish"/> runs on the ingest path of every message. When nobody watches the device,
/// which is nearly always, it costs one dictionary miss and allocates nothing; only a watched device's points are
/// copied. A watcher that falls behind loses its oldest points (a bounded channel that drops the oldest): a live
/// view wants the newest values, and a slow browser must never hold back ingest or grow memory.
/// </remarks>
public sealed class LiveTelemetry
{
    /// <summary>How many messages a watcher may have waiting before the oldest are dropped.</summary>
    public const int WatcherCapacity = 256;

    private readonly ConcurrentDictionary<string, ImmutableArray<Channel<TelemetryPoint[]>>> _watchers = new(StringComparer.Ordinal);

    // ConcurrentDictionary.IsEmpty takes every lock when the dictionary is empty, the usual case: a count is cheaper.
    private int _watcherCount;

    /// <summary>Whether anyone watches <paramref name="deviceId"/>.</summary>
    public bool IsWatched(string deviceId) => Volatile.Read(ref _watcherCount) > 0 && _watchers.ContainsKey(deviceId);

    /// <summary>
    /// Passes <paramref name="points"/> of <paramref name="deviceId"/> to its watchers once <paramref name="durable"/>
    /// has completed successfully; nothing happens when nobody watches it.
    /// </summary>
    public void Publish(string deviceId, ReadOnlySpan<TelemetryPoint> points, Task durable)
    {
        if (points.IsEmpty || !IsWatched(deviceId))
        {
            return;
        }

        var copy = points.ToArray();
        if (durable.IsCompletedSuccessfully)
        {
            Deliver(deviceId, copy);
            return;
        }

        _ = durable.ContinueWith(
            static (task, state) =>
            {
                var (live, id, batch) = ((LiveTelemetry, string, TelemetryPoint[]))state!;
                if (task.IsCompletedSuccessfully)
                {
                    live.Deliver(id, batch);
                }
            },
            (this, deviceId, copy),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>
    /// The durable points of <paramref name="deviceId"/> from now on, one array per accepted message, until
    /// <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public async IAsyncEnumerable<TelemetryPoint[]> WatchAsync(string deviceId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<TelemetryPoint[]>(new BoundedChannelOptions(WatcherCapacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        Interlocked.Increment(ref _watcherCount);
        _watchers.AddOrUpdate(deviceId, static (_, c) => [c], static (_, existing, c) => existing.Add(c), channel);
        try
        {
            await foreach (var batch in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return batch;
            }
        }
        finally
        {
            Unwatch(deviceId, channel);
            Interlocked.Decrement(ref _watcherCount);
        }
    }

    private void Deliver(string deviceId, TelemetryPoint[] batch)
    {
        if (_watchers.TryGetValue(deviceId, out var channels))
        {
            foreach (var channel in channels)
            {
                channel.Writer.TryWrite(batch);
            }
        }
    }

    private void Unwatch(string deviceId, Channel<TelemetryPoint[]> channel)
    {
        while (_watchers.TryGetValue(deviceId, out var existing))
        {
            var remaining = existing.Remove(channel);
            var done = remaining.IsEmpty
                ? _watchers.TryRemove(new KeyValuePair<string, ImmutableArray<Channel<TelemetryPoint[]>>>(deviceId, existing))
                : _watchers.TryUpdate(deviceId, remaining, existing);
            if (done)
            {
                return;
            }
        }
    }
}
