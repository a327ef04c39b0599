using Fieldline.Core.Telemetry;

namespace Fieldline.Core.Tests.Telemetry;

public sealed class LiveTelemetryTests
{
    private static readonly TelemetryPoint[] Points = [new("dev-1", "temperature", 1_000, 21.5, "°C")];

    [Fact]
    public async Task A_watcher_gets_a_message_once_it_is_durable_and_not_if_the_write_failed()
    {
        var live = new LiveTelemetry();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var watch = live.WatchAsync("dev-1", timeout.Token).GetAsyncEnumerator(timeout.Token);
        var next = watch.MoveNextAsync();
        await WaitUntilWatchedAsync(live, "dev-1");

        var failed = new TaskCompletionSource();
        live.Publish("dev-1", Points, failed.Task);
        failed.SetException(new IOException("disk full"));
        var durable = new TaskCompletionSource();
        live.Publish("dev-1", [Points[0] with { Value = 22 }], durable.Task);
        var waitedForWrite = next.IsCompleted;
        durable.SetResult();

        Assert.True(await next);
        Assert.False(waitedForWrite, "the point reached the watcher before its write completed");
        Assert.Equal(22, Assert.Single(watch.Current).Value);
    }

    [Fact]
    public async Task Messages_written_in_one_batch_reach_the_watcher_in_the_order_they_were_accepted()
    {
        var live = new LiveTelemetry();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var watch = live.WatchAsync("dev-1", timeout.Token).GetAsyncEnumerator(timeout.Token);
        var first = watch.MoveNextAsync();
        await WaitUntilWatchedAsync(live, "dev-1");

        // As the pipeline does: every message of a batch waits on the batch's one completion, whose continuations run
        // asynchronously, so they could run in any order.
        var batch = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        for (var i = 0; i < 50; i++)
        {
            live.Publish("dev-1", [Points[0] with { Value = i }], batch.Task);
        }

        batch.SetResult();
        var values = new List<double>();
        Assert.True(await first);
        values.Add(watch.Current[0].Value);
        while (values.Count < 50 && await watch.MoveNextAsync())
        {
            values.Add(watch.Current[0].Value);
        }

        Assert.Equal(Enumerable.Range(0, 50).Select(i => (double)i), values);
    }

    [Fact]
    public async Task Publishing_a_device_nobody_watches_allocates_nothing_per_message_even_while_another_is_watched()
    {
        var live = new LiveTelemetry();
        var durable = Task.CompletedTask;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            live.Publish("dev-1", Points, durable);
        }

        var nobodyWatching = GC.GetAllocatedBytesForCurrentThread() - before;
        using var stop = new CancellationTokenSource();
        await using var watch = live.WatchAsync("dev-2", stop.Token).GetAsyncEnumerator(stop.Token);
        var pending = watch.MoveNextAsync();
        await WaitUntilWatchedAsync(live, "dev-2");
        before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            live.Publish("dev-1", Points, durable);
        }

        var anotherWatched = GC.GetAllocatedBytesForCurrentThread() - before;
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask());

        // Less than a byte per message: nothing is allocated per message (a stray object of the runtime's may land on
        // the thread while it measures, as one 24-byte object did in a full test run).
        Assert.True(nobodyWatching < 10_000, $"expected nothing allocated per message with nobody watching, saw {nobodyWatching} bytes for 10,000");
        Assert.True(anotherWatched < 10_000, $"expected nothing allocated per message of an unwatched device, saw {anotherWatched} bytes for 10,000");
    }

    [Fact]
    public async Task Nobody_watching_costs_nothing_and_a_watcher_that_leaves_is_forgotten()
    {
        var live = new LiveTelemetry();
        live.Publish("dev-1", Points, Task.CompletedTask); // nobody watches: dropped
        using var stop = new CancellationTokenSource();
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watching = Task.Run(async () =>
        {
            var seen = new List<TelemetryPoint[]>();
            try
            {
                await foreach (var batch in live.WatchAsync("dev-1", stop.Token))
                {
                    seen.Add(batch);
                    received.TrySetResult();
                }
            }
            catch (OperationCanceledException)
            {
            }

            return seen;
        });
        await WaitUntilWatchedAsync(live, "dev-1");
        live.Publish("dev-2", Points, Task.CompletedTask);
        live.Publish("dev-1", Points, Task.CompletedTask);
        await received.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await stop.CancelAsync();
        var seen = await watching;

        Assert.Single(seen);
        Assert.False(live.IsWatched("dev-1"));
    }

    [Fact]
    public async Task A_watcher_that_falls_behind_keeps_the_newest_messages()
    {
        var live = new LiveTelemetry();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var watch = live.WatchAsync("dev-1", timeout.Token).GetAsyncEnumerator(timeout.Token);
        var first = watch.MoveNextAsync();
        await WaitUntilWatchedAsync(live, "dev-1");
        Assert.True(await PublishAndRead(live, first));

        for (var i = 0; i < LiveTelemetry.WatcherCapacity + 10; i++)
        {
            live.Publish("dev-1", [Points[0] with { Value = i }], Task.CompletedTask);
        }

        Assert.True(await watch.MoveNextAsync());
        Assert.Equal(10, watch.Current[0].Value); // the 10 oldest were dropped
    }

    private static async Task<bool> PublishAndRead(LiveTelemetry live, ValueTask<bool> pending)
    {
        live.Publish("dev-1", Points, Task.CompletedTask);
        return await pending;
    }

    private static async Task WaitUntilWatchedAsync(LiveTelemetry live, string deviceId)
    {
        // The watcher registers on its first MoveNextAsync, which may run on another thread.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!live.IsWatched(deviceId))
        {
            Assert.True(DateTime.UtcNow < deadline, $"expected {deviceId} to be watched within 10 s");
            await Task.Delay(5);
        }
    }
}
