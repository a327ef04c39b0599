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
/// copied, and queued at once with the write it waits for, so that the watcher gets the messages in the order they
/// were accepted. A watcher that falls behind loses its oldest messages (a bounded channel that drops the oldest): a
/// live view wants the newest values, and a slow browser must never hold back ingest or grow memory.
/// </remarks>
public sealed class LiveTelemetry
{
    /// <summary>How many messages a watcher may have waiting before the oldest are dropped.</summary>
    public const int WatcherCapacity = 256;

    private readonly ConcurrentDictionary<string, ImmutableArray<Channel<PendingMessage>>> _watchers = new(StringComparer.Ordinal);

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
        if (points.IsEmpty || Volatile.Read(ref _watcherCount) == 0 || !_watchers.TryGetValue(deviceId, out var channels))
        {
            return;
        }

        // Queued now, in the order the device sent them, with the write they wait for: the watcher awaits each write
        // in turn, so messages reach it in order even when their writes complete together.
        var message = new PendingMessage(durable, points.ToArray());
        foreach (var channel in channels)
        {
            channel.Writer.TryWrite(message);
        }
    }

    /// <summary>
    /// The durable points of <paramref name="deviceId"/> from now on, one array per accepted message, in the order
    /// they were accepted, until <paramref name="cancellationToken"/> is cancelled. A message whose write failed is
    /// left out.
    /// </summary>
    public async IAsyncEnumerable<TelemetryPoint[]> WatchAsync(string deviceId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<PendingMessage>(new BoundedChannelOptions(WatcherCapacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        Interlocked.Increment(ref _watcherCount);
        _watchers.AddOrUpdate(deviceId, static (_, c) => [c], static (_, existing, c) => existing.Add(c), channel);
        try
        {
            await foreach (var message in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await message.Durable.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                cancellationToken.ThrowIfCancellationRequested();
                if (message.Durable.IsCompletedSuccessfully)
                {
                    yield return message.Points;
                }
            }
        }
        finally
        {
            Unwatch(deviceId, channel);
            Interlocked.Decrement(ref _watcherCount);
        }
    }

    private void Unwatch(string deviceId, Channel<PendingMessage> channel)
    {
        while (_watchers.TryGetValue(deviceId, out var existing))
        {
            var remaining = existing.Remove(channel);
            var done = remaining.IsEmpty
                ? _watchers.TryRemove(new KeyValuePair<string, ImmutableArray<Channel<PendingMessage>>>(deviceId, existing))
                : _watchers.TryUpdate(deviceId, remaining, existing);
            if (done)
            {
                return;
            }
        }
    }

    private sealed record PendingMessage(Task Durable, TelemetryPoint[] Points);
}
