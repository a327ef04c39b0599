using Fieldline.Core.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Fieldline.Core.Tests.Telemetry;

public sealed class TelemetryPipelineTests : IAsyncLifetime
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(10);
    private readonly List<(ControlledStore Store, TelemetryPipeline Pipeline)> created = [];

    private TelemetryPipeline Create(ControlledStore store, int maxBatchPoints = 20_000, long maxQueuedPoints = 200_000)
    {
        var pipeline = new TelemetryPipeline(store, Options.Create(new TelemetryPipelineOptions { MaxBatchPoints = maxBatchPoints, MaxQueuedPoints = maxQueuedPoints }), NullLogger<TelemetryPipeline>.Instance, TimeProvider.System);
        created.Add((store, pipeline));
        return pipeline;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // A failed assertion may leave appends pending; complete them so that disposal cannot hang the run.
    public async Task DisposeAsync()
    {
        foreach (var (store, pipeline) in created)
        {
            store.CompleteAll();
            await pipeline.DisposeAsync().AsTask().WaitAsync(Bounded);
        }
    }

    private static TelemetryPoint[] Points(int count, string device = "d") =>
        Enumerable.Range(0, count).Select(i => new TelemetryPoint(device, "m", i, i)).ToArray();

    [Fact]
    public async Task Batch_task_completes_only_after_the_store_append_completes()
    {
        var store = new ControlledStore();
        var pipeline = Create(store);
        var task = pipeline.Submit(Points(3));
        var append = await store.NextAppend.WaitAsync(Bounded);
        Assert.False(task.IsCompleted, "the submit task completed before the store append did");
        Assert.Equal(3, pipeline.QueuedPoints);
        append.Complete();
        await task.WaitAsync(Bounded);
        Assert.Equal(0, pipeline.QueuedPoints);
        Assert.Equal(3, store.Written.Count);
    }

    [Fact]
    public async Task Submits_during_a_write_share_the_next_batch()
    {
        var store = new ControlledStore();
        var pipeline = Create(store);
        var first = pipeline.Submit(Points(1));
        var firstAppend = await store.NextAppend.WaitAsync(Bounded);

        var shared = new Task[50];
        for (var i = 0; i < shared.Length; i++)
        {
            shared[i] = pipeline.Submit(Points(2));
        }

        _ = Assert.Single(shared.Distinct());
        firstAppend.Complete();
        await first.WaitAsync(Bounded);

        var second = await store.NextAppend.WaitAsync(Bounded);
        Assert.Equal(100, second.Points.Length);
        Assert.False(shared[0].IsCompleted);
        second.Complete();
        await shared[0].WaitAsync(Bounded);
    }

    [Fact]
    public async Task Batches_are_capped_and_the_rest_joins_the_next_batch()
    {
        var store = new ControlledStore();
        var pipeline = Create(store, maxBatchPoints: 10);
        var blocker = pipeline.Submit(Points(1));
        var firstAppend = await store.NextAppend.WaitAsync(Bounded);
        var a = pipeline.Submit(Points(6));
        var b = pipeline.Submit(Points(6));
        var c = pipeline.Submit(Points(4));
        Assert.NotSame(a, b);
        Assert.Same(a, c);
        firstAppend.Complete();
        var second = await store.NextAppend.WaitAsync(Bounded);
        Assert.Equal(10, second.Points.Length);
        second.Complete();
        var third = await store.NextAppend.WaitAsync(Bounded);
        Assert.Equal(6, third.Points.Length);
        third.Complete();
        await Task.WhenAll(blocker, a, b, c).WaitAsync(Bounded);
    }

    [Fact]
    public async Task Over_the_queue_limit_points_are_deferred_to_a_later_batch()
    {
        var store = new ControlledStore();
        var pipeline = Create(store, maxQueuedPoints: 5);
        var blocker = pipeline.Submit(Points(1));
        var firstAppend = await store.NextAppend.WaitAsync(Bounded);
        var open = pipeline.Submit(Points(5));
        var deferred = pipeline.Submit(Points(1));
        Assert.NotSame(open, deferred);
        Assert.Equal(7, pipeline.QueuedPoints);
        firstAppend.Complete();
        (await store.NextAppend.WaitAsync(Bounded)).Complete();
        await open.WaitAsync(Bounded);
        Assert.False(deferred.IsCompleted, "the deferred submit completed with the earlier batch");
        (await store.NextAppend.WaitAsync(Bounded)).Complete();
        await deferred.WaitAsync(Bounded);
    }

    [Fact]
    public async Task A_failing_store_faults_the_batch_task()
    {
        var store = new ControlledStore();
        var pipeline = Create(store);
        var task = pipeline.Submit(Points(2));
        (await store.NextAppend.WaitAsync(Bounded)).Fail(new IOException("disk full"));
        var error = await Assert.ThrowsAsync<IOException>(() => task.WaitAsync(Bounded));
        Assert.Equal("disk full", error.Message);
        Assert.Equal(0, pipeline.QueuedPoints);

        var next = pipeline.Submit(Points(1));
        (await store.NextAppend.WaitAsync(Bounded)).Complete();
        await next.WaitAsync(Bounded);
    }

    [Fact]
    public async Task Dispose_writes_everything_submitted()
    {
        var store = new ControlledStore { AutoComplete = true };
        var pipeline = Create(store, maxBatchPoints: 100);
        var tasks = Enumerable.Range(0, 200).Select(i => pipeline.Submit(Points(7, $"d{i}"))).ToArray();
        await pipeline.DisposeAsync().AsTask().WaitAsync(Bounded);
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully));
        Assert.Equal(1400, store.Written.Count);
        Assert.Throws<ObjectDisposedException>(() => { _ = pipeline.Submit(Points(1)); });
    }

    [Fact]
    public async Task Flush_waits_for_earlier_submits()
    {
        var store = new ControlledStore();
        var pipeline = Create(store);
        var submitted = pipeline.Submit(Points(4));
        var flushed = pipeline.FlushAsync();
        var append = await store.NextAppend.WaitAsync(Bounded);
        Assert.False(flushed.IsCompleted);
        append.Complete();
        await flushed.WaitAsync(Bounded);
        Assert.True(submitted.IsCompletedSuccessfully);
        await pipeline.FlushAsync().WaitAsync(Bounded);
    }

    [Fact]
    public async Task Concurrent_submitters_all_get_their_points_written()
    {
        // Each append takes a moment, as a real commit does, so that submits pile up behind it.
        var store = new ControlledStore { AutoComplete = true, AppendDelay = TimeSpan.FromMilliseconds(1) };
        var pipeline = Create(store, maxBatchPoints: 500);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await pipeline.Submit(Points(10, $"w{worker}"));
            }
        }))).WaitAsync(Bounded);
        Assert.Equal(16_000, store.Written.Count);
        Assert.True(store.Appends < 1600, $"expected group commit to merge submits, saw {store.Appends} appends for 1600 submits");
    }

    /// <summary>A store whose appends the test completes or fails by hand.</summary>
    private sealed class ControlledStore : ITelemetryStore
    {
        private readonly System.Threading.Channels.Channel<PendingAppend> appends = System.Threading.Channels.Channel.CreateUnbounded<PendingAppend>();

        private readonly List<PendingAppend> outstanding = [];

        public bool AutoComplete { get; set; }

        public TimeSpan AppendDelay { get; init; }

        public List<TelemetryPoint> Written { get; } = [];

        public int Appends { get; private set; }

        public Task<PendingAppend> NextAppend => appends.Reader.ReadAsync().AsTask();

        public long SizeBytes => 0;

        public Task AppendAsync(ReadOnlyMemory<TelemetryPoint> points, CancellationToken cancellationToken)
        {
            Appends++;
            var append = new PendingAppend(points.ToArray(), this);
            if (AutoComplete && AppendDelay > TimeSpan.Zero)
            {
                return Task.Delay(AppendDelay, cancellationToken).ContinueWith(_ => append.Complete(), TaskScheduler.Default);
            }

            if (AutoComplete)
            {
                append.Complete();
            }
            else
            {
                lock (outstanding)
                {
                    outstanding.Add(append);
                }

                appends.Writer.TryWrite(append);
            }

            return append.Task;
        }

        public void CompleteAll()
        {
            AutoComplete = true;
            lock (outstanding)
            {
                foreach (var append in outstanding)
                {
                    append.TryComplete();
                }
            }
        }

        public Task OpenAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IReadOnlyList<LatestValue>> GetLatestAsync(string deviceId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<RawPointPage> QueryRawAsync(string deviceId, string metric, long fromMs, long toMs, int limit, string? cursor, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<AggregateBucket>> QueryAggregatesAsync(string deviceId, string metric, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<long> DeleteOlderThanAsync(long cutoffMs, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task DeleteDeviceAsync(string deviceId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public sealed class PendingAppend(TelemetryPoint[] points, ControlledStore store)
        {
            private readonly TaskCompletionSource completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public TelemetryPoint[] Points => points;

            public Task Task => completion.Task;

            public void Complete() => Assert.True(TryComplete(), "the append was already completed");

            public bool TryComplete()
            {
                if (completion.Task.IsCompleted)
                {
                    return false;
                }

                lock (store.Written)
                {
                    store.Written.AddRange(points);
                }

                return completion.TrySetResult();
            }

            public void Fail(Exception error) => completion.SetException(error);
        }
    }
}
