using System.Collections.Concurrent;
using Fieldline.Core.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Core.Tests.Telemetry;

public sealed class TelemetryRetentionServiceTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeMilliseconds(1_732_550_000_000);

    [Fact]
    public async Task Retention_runs_at_startup_and_then_every_interval()
    {
        var time = new FakeTimeProvider(Start);
        var store = new RecordingStore();
        using var service = new TelemetryRetentionService(store, Options.Create(new TelemetryRetentionOptions { MaxAge = TimeSpan.FromDays(30), Interval = TimeSpan.FromHours(1) }), time, NullLogger<TelemetryRetentionService>.Instance);
        await service.StartAsync(CancellationToken.None);

        await WaitForCallsAsync(store, 1, time, TimeSpan.Zero);
        Assert.Equal((Start - TimeSpan.FromDays(30)).ToUnixTimeMilliseconds(), store.Cutoffs.First());

        var advances = await WaitForCallsAsync(store, 2, time, TimeSpan.FromHours(1));
        Assert.Equal((Start + (advances * TimeSpan.FromHours(1)) - TimeSpan.FromDays(30)).ToUnixTimeMilliseconds(), store.Cutoffs.Last());
        await service.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Zero_max_age_disables_retention()
    {
        var time = new FakeTimeProvider(Start);
        var store = new RecordingStore();
        using var service = new TelemetryRetentionService(store, Options.Create(new TelemetryRetentionOptions()), time, NullLogger<TelemetryRetentionService>.Instance);
        await service.StartAsync(CancellationToken.None);
        await service.ExecuteTask!.WaitAsync(TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromDays(2));
        Assert.Empty(store.Cutoffs);
    }

    // Advances fake time by `advance` whenever the service has been idle a while (it may not have armed its
    // timer at the first advance), and returns how many advances it took.
    private static async Task<int> WaitForCallsAsync(RecordingStore store, int calls, FakeTimeProvider time, TimeSpan advance)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var advances = 0;
        for (var polls = 0; store.Cutoffs.Count < calls; polls++)
        {
            Assert.True(DateTime.UtcNow < deadline, $"expected {calls} retention runs within 10 s, saw {store.Cutoffs.Count}");
            if (advance > TimeSpan.Zero && polls % 20 == 0)
            {
                time.Advance(advance);
                advances++;
            }

            await Task.Delay(10);
        }

        return advances;
    }

    private sealed class RecordingStore : ITelemetryStore
    {
        public ConcurrentQueue<long> Cutoffs { get; } = new();

        public long SizeBytes => 0;

        public Task<long> DeleteOlderThanAsync(long cutoffMs, CancellationToken cancellationToken)
        {
            Cutoffs.Enqueue(cutoffMs);
            return Task.FromResult(0L);
        }

        public Task OpenAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task AppendAsync(ReadOnlyMemory<TelemetryPoint> points, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IReadOnlyList<LatestValue>> GetLatestAsync(string deviceId, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<RawPointPage> QueryRawAsync(string deviceId, string metric, long fromMs, long toMs, int limit, string? cursor, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<AggregateBucket>> QueryAggregatesAsync(string deviceId, string metric, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task DeleteDeviceAsync(string deviceId, CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
