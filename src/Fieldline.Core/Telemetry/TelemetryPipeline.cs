using System.Buffers;
using System.Diagnostics.Metrics;
using Fieldline.Core.Observability;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Fieldline.Core.Telemetry;

/// <summary>
/// The group-commit ingest stage between the MQTT broker and the <see cref="ITelemetryStore"/>.
/// </summary>
/// <remarks>
/// <para>
/// Contract for callers: <see cref="Submit"/> copies the points and returns a task that completes when they are
/// durable in the store, or faults with the store's exception. A caller (the broker, per client connection) must
/// await that task before it reads the next message from the same client: that await is how backpressure
/// reaches device sockets. When more than <see cref="TelemetryPipelineOptions.MaxQueuedPoints"/> are waiting,
/// new points are deferred to a later batch, so their task takes longer and the slowest path throttles the
/// busiest clients first. Submit itself never blocks and never drops points.
/// </para>
/// <para>
/// <see cref="FlushAsync"/> and <see cref="DisposeAsync"/> wait until everything submitted before them has been
/// written; after disposal Submit throws <see cref="ObjectDisposedException"/>.
/// </para>
/// </remarks>
public sealed partial class TelemetryPipeline : IAsyncDisposable
{
    // Design note (group commit): a store append costs one transaction commit whatever its size, so throughput
    // comes from batching. Submitters copy their points into the open batch under a short lock and all share that
    // batch's one TaskCompletionSource, so a Submit allocates nothing. A single writer loop takes the oldest batch
    // as soon as the previous append finished: whatever accumulated during a write becomes the next write, which
    // makes batches grow exactly as much as the store is slow, with no timers or tuning. Batches are capped at
    // MaxBatchPoints; a submit never spans batches, so its task reports the fate of all its points.
    private readonly ITelemetryStore store;
    private readonly TelemetryPipelineOptions options;
    private readonly ILogger<TelemetryPipeline> logger;
    private readonly TimeProvider timeProvider;
    private readonly Meter meter;
    private readonly Counter<long> pointsWritten;
    private readonly Histogram<int> batchSize;
    private readonly Histogram<double> writeDuration;
    private readonly Lock gate = new();

    // Batches not yet taken by the writer, oldest first; usually one, more when the backlog exceeds a batch.
    private readonly List<Batch> pending = [];
    private readonly SemaphoreSlim batchesAvailable = new(0);
    private readonly Task writerLoop;
    private long queuedPoints;
    private Batch? writing;
    private bool disposed;

    /// <summary>Creates the pipeline and starts its writer loop.</summary>
    public TelemetryPipeline(ITelemetryStore store, IOptions<TelemetryPipelineOptions> options, ILogger<TelemetryPipeline> logger, TimeProvider timeProvider, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.store = store ?? throw new ArgumentNullException(nameof(store));
        this.options = options.Value;
        this.logger = logger ?? throw new ArgumentNullException(nameof(logger));
        this.timeProvider = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.MaxBatchPoints, 1, nameof(options));

        meter = meterFactory?.Create(MetricNames.TelemetryMeter) ?? new Meter(MetricNames.TelemetryMeter);
        pointsWritten = meter.CreateCounter<long>("fieldline.telemetry.points_written", "{point}", "Points durably written to the store.");
        batchSize = meter.CreateHistogram<int>("fieldline.telemetry.batch_size", "{point}", "Points per store append (group commit).");
        writeDuration = meter.CreateHistogram<double>("fieldline.telemetry.write_duration", "s", "Duration of one store append.");
        meter.CreateObservableGauge("fieldline.telemetry.queued_points", () => QueuedPoints, "{point}", "Points submitted but not yet durable.");

        writerLoop = Task.Run(WriteLoopAsync);
    }

    /// <summary>Points submitted but not yet written (including the batch being written).</summary>
    public long QueuedPoints => Interlocked.Read(ref queuedPoints);

    /// <summary>
    /// Copies <paramref name="points"/> into the open batch and returns that batch's task, shared with the other
    /// submitters of the batch. Await it before reading more from the same source (see the type's remarks).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The pipeline is disposed.</exception>
    public Task Submit(ReadOnlySpan<TelemetryPoint> points)
    {
        if (points.IsEmpty)
        {
            return Task.CompletedTask;
        }

        bool created;
        Batch batch;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);

            // Over the soft limit, skip the oldest open batch: these points then wait one more write cycle.
            var first = Interlocked.Read(ref queuedPoints) >= options.MaxQueuedPoints && pending.Count > 0 ? 1 : 0;
            Batch? target = null;
            for (var i = first; i < pending.Count; i++)
            {
                if (pending[i].HasRoomFor(points.Length, options.MaxBatchPoints))
                {
                    target = pending[i];
                    break;
                }
            }

            created = target is null;
            if (target is null)
            {
                target = new Batch();
                pending.Add(target);
            }

            target.Add(points);
            Interlocked.Add(ref queuedPoints, points.Length);
            batch = target;
        }

        if (created)
        {
            batchesAvailable.Release();
        }

        return batch.Completion.Task;
    }

    /// <summary>
    /// Completes when every point submitted before the call has been written or has failed (failures are
    /// reported through the tasks returned by <see cref="Submit"/>, not here).
    /// </summary>
    public Task FlushAsync(CancellationToken cancellationToken = default)
    {
        Task last;
        lock (gate)
        {
            last = pending.Count > 0 ? pending[^1].Completion.Task : writing?.Completion.Task ?? Task.CompletedTask;
        }

        return last.IsCompleted ? Task.CompletedTask : WaitQuietlyAsync(last, cancellationToken);
    }

    /// <summary>Stops accepting points, writes everything already submitted, then stops the writer loop.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
        }

        // One extra wake-up: the loop exits when it finds nothing pending after disposal.
        batchesAvailable.Release();
        await writerLoop.ConfigureAwait(false);
        batchesAvailable.Dispose();
        meter.Dispose();
    }

    private static async Task WaitQuietlyAsync(Task task, CancellationToken cancellationToken) =>
        await task.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    private async Task WriteLoopAsync()
    {
        while (true)
        {
            await batchesAvailable.WaitAsync().ConfigureAwait(false);
            Batch batch;
            lock (gate)
            {
                if (pending.Count == 0)
                {
                    if (disposed)
                    {
                        return;
                    }

                    continue;
                }

                batch = pending[0];
                pending.RemoveAt(0);
                writing = batch;
            }

            await WriteAsync(batch).ConfigureAwait(false);
        }
    }

    private async Task WriteAsync(Batch batch)
    {
        var started = timeProvider.GetTimestamp();
        try
        {
            await store.AppendAsync(batch.Points, CancellationToken.None).ConfigureAwait(false);
            var elapsed = timeProvider.GetElapsedTime(started);
            pointsWritten.Add(batch.Count);
            batchSize.Record(batch.Count);
            writeDuration.Record(elapsed.TotalSeconds);
            LogBatchWritten(batch.Count, elapsed.TotalMilliseconds);
            Release(batch);
            batch.Completion.TrySetResult();
        }
        catch (Exception ex)
        {
            LogBatchFailed(ex, batch.Count);
            Release(batch);
            batch.Completion.TrySetException(ex);
        }
    }

    private void Release(Batch batch)
    {
        var count = batch.Count;
        batch.ReturnBuffer();
        lock (gate)
        {
            if (ReferenceEquals(writing, batch))
            {
                writing = null;
            }
        }

        Interlocked.Add(ref queuedPoints, -count);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Wrote a batch of {Count} points in {ElapsedMs:F1} ms")]
    private partial void LogBatchWritten(int count, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing a batch of {Count} points failed; its submitters see the error")]
    private partial void LogBatchFailed(Exception exception, int count);

    /// <summary>Points of one group commit and the task all their submitters await.</summary>
    private sealed class Batch
    {
        private TelemetryPoint[] buffer = [];

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count { get; private set; }

        public ReadOnlyMemory<TelemetryPoint> Points => buffer.AsMemory(0, Count);

        // An empty batch takes any submit, so one larger than MaxBatchPoints still gets a batch of its own.
        public bool HasRoomFor(int points, int maxBatchPoints) => Count == 0 || Count + points <= maxBatchPoints;

        public void Add(ReadOnlySpan<TelemetryPoint> points)
        {
            if (Count + points.Length > buffer.Length)
            {
                var larger = ArrayPool<TelemetryPoint>.Shared.Rent(Math.Max(Count + points.Length, Math.Max(256, buffer.Length * 2)));
                buffer.AsSpan(0, Count).CopyTo(larger);
                ReturnBuffer();
                buffer = larger;
            }

            points.CopyTo(buffer.AsSpan(Count));
            Count += points.Length;
        }

        public void ReturnBuffer()
        {
            if (buffer.Length > 0)
            {
                // Cleared so the pool does not keep device and metric strings alive.
                ArrayPool<TelemetryPoint>.Shared.Return(buffer, clearArray: true);
                buffer = [];
            }
        }
    }
}
