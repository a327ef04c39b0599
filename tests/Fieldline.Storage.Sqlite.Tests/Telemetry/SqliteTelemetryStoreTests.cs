using Fieldline.Core.Telemetry;

namespace Fieldline.Storage.Sqlite.Tests.Telemetry;

public sealed class SqliteTelemetryStoreTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly StoreFixture fixture = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => fixture.DisposeAsync().AsTask();

    private static TelemetryPoint P(long ts, double value, string device = "dev", string metric = "temp", string? unit = null) => StoreFixture.Point(ts, value, device, metric, unit);

    [Fact]
    public async Task Appended_points_are_returned_by_raw_latest_and_aggregate_queries()
    {
        var store = await fixture.OpenAsync();
        await store.AppendAsync(new[] { P(1000, 1, unit: "°C"), P(2000, 2), P(3000, 4), P(11_000, 10), P(12_500, 20), P(1500, 5, metric: "hum", unit: "%") }, None);

        var raw = await store.QueryRawAsync("dev", "temp", 0, 20_000, 100, null, None);
        Assert.Equal([new(1000, 1), new(2000, 2), new(3000, 4), new(11_000, 10), new(12_500, 20)], raw.Points);
        Assert.Null(raw.NextCursor);

        var window = await store.QueryRawAsync("dev", "temp", 2000, 11_000, 100, null, None);
        Assert.Equal([new(2000, 2), new(3000, 4)], window.Points);

        var latest = await store.GetLatestAsync("dev", None);
        Assert.Equal([new LatestValue("hum", 1500, 5, "%"), new LatestValue("temp", 12_500, 20, "°C")], latest);

        var buckets = await store.QueryAggregatesAsync("dev", "temp", 0, 20_000, 10_000, None);
        Assert.Equal(2, buckets.Count);
        AssertBucket(new AggregateBucket(0, 3, 7.0 / 3, 1, 4, Math.Sqrt(((1 - (7.0 / 3)) * (1 - (7.0 / 3)) + (2 - (7.0 / 3)) * (2 - (7.0 / 3)) + (4 - (7.0 / 3)) * (4 - (7.0 / 3))) / 3)), buckets[0]);
        AssertBucket(new AggregateBucket(10_000, 2, 15, 10, 20, 5), buckets[1]);

        Assert.Empty((await store.QueryRawAsync("dev", "missing", 0, 20_000, 10, null, None)).Points);
        Assert.Empty(await store.GetLatestAsync("nobody", None));
    }

    [Fact]
    public async Task Aggregates_merge_chunks_and_head_with_exact_numbers()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 10);

        // 25 points, values 0..24 at one per second: two sealed chunks of 10 and a head of 5.
        await store.AppendAsync(Enumerable.Range(0, 25).Select(i => P(i * 1000L, i)).ToArray(), None);
        Assert.Equal(2, fixture.CountRows("telemetry_chunk"));

        var buckets = await store.QueryAggregatesAsync("dev", "temp", 0, 25_000, 5000, None);
        Assert.Equal(5, buckets.Count);
        for (var b = 0; b < 5; b++)
        {
            // Values 5b..5b+4: mean 5b+2, population variance 2.
            AssertBucket(new AggregateBucket(b * 5000L, 5, (5 * b) + 2, 5 * b, (5 * b) + 4, Math.Sqrt(2)), buckets[b]);
        }

        var partial = await store.QueryAggregatesAsync("dev", "temp", 3000, 12_000, 1_000_000, None);
        AssertBucket(new AggregateBucket(0, 9, 7, 3, 11, Math.Sqrt(60.0 / 9)), Assert.Single(partial));
    }

    [Fact]
    public async Task Cursor_paging_returns_10000_points_with_duplicate_timestamps_exactly_once_in_order()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 240);

        // Three points share each timestamp; values record arrival order, which equal timestamps must keep.
        var points = Enumerable.Range(0, 10_000).Select(i => P(1_000_000 + (i / 3), i)).ToArray();
        for (var offset = 0; offset < points.Length; offset += 1000)
        {
            await store.AppendAsync(points.AsMemory(offset, 1000), None);
        }

        foreach (var pageSize in new[] { 1, 2, 97, 1000, 20_000 })
        {
            var all = await StoreFixture.ReadAllAsync(store, "dev", "temp", 0, long.MaxValue, pageSize);
            Assert.Equal(10_000, all.Count);
            for (var i = 0; i < all.Count; i++)
            {
                Assert.True(all[i] == new StoredPoint(1_000_000 + (i / 3), i), $"page size {pageSize}, position {i}: expected ({1_000_000 + (i / 3)}, {i}), saw {all[i]}");
            }
        }
    }

    [Fact]
    public async Task Paging_stays_consistent_while_heads_are_sealed_between_pages()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 1000);
        await store.AppendAsync(Enumerable.Range(0, 500).Select(i => P(i / 5, i)).ToArray(), None);

        var seen = new List<StoredPoint>();
        string? cursor = null;
        var page = 0;
        do
        {
            var result = await store.QueryRawAsync("dev", "temp", 0, 1000, 33, cursor, None);
            seen.AddRange(result.Points);
            cursor = result.NextCursor;
            if (++page == 3)
            {
                await store.CompactAsync(sealAll: true, None);
            }
        }
        while (cursor is not null);

        Assert.Equal(Enumerable.Range(0, 500).Select(i => new StoredPoint(i / 5, i)), seen);
    }

    [Fact]
    public async Task Out_of_order_and_late_points_are_merged_in_time_order()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 50);
        var random = new Random(7);
        var timestamps = Enumerable.Range(0, 200).Select(i => i * 100L).OrderBy(_ => random.Next()).ToArray();
        await store.AppendAsync(timestamps.Select(ts => P(ts, ts / 100.0)).ToArray(), None);

        // Late data for ranges that were already sealed, including a duplicate timestamp.
        await store.AppendAsync(new[] { P(50, -1), P(5000, -2), P(19_950, -3) }, None);
        await store.CompactAsync(sealAll: true, None);
        Assert.True(fixture.CountRows("telemetry_chunk") >= 5, "expected overlapping chunks for late data");

        var all = await StoreFixture.ReadAllAsync(store, "dev", "temp", 0, 100_000, 64);
        var expected = Enumerable.Range(0, 200).Select(i => new StoredPoint(i * 100L, i))
            .Concat([new StoredPoint(50, -1), new StoredPoint(19_950, -3)])
            .Append(new StoredPoint(5000, -2))
            .OrderBy(p => p.TimestampMs)
            .ToList();
        Assert.Equal(expected, all);

        var bucket = Assert.Single(await store.QueryAggregatesAsync("dev", "temp", 0, 100_000, 100_000, None));
        Assert.Equal(203, bucket.Count);
        Assert.Equal(-3, bucket.Min);
        Assert.Equal(199, bucket.Max);
        Assert.Equal((19_900.0 - 6) / 203, bucket.Mean, 12);

        var latest = Assert.Single(await store.GetLatestAsync("dev", None));
        Assert.Equal(new LatestValue("temp", 19_950, -3, null), latest);
    }

    [Fact]
    public async Task Points_survive_reopening_the_store()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 100);
        await store.AppendAsync(Enumerable.Range(0, 150).Select(i => P(i * 10L, i * 0.5)).ToArray(), None);
        await store.AppendAsync(new[] { P(5, 99, metric: "hum", unit: "%") }, None);
        Assert.Equal(1, fixture.CountRows("telemetry_chunk"));
        await store.DisposeAsync();

        // 50 temp points and the hum point exist only in the log now.
        Assert.Equal(51, fixture.CountRows("telemetry_log"));
        var reopened = await fixture.OpenAsync(maxHeadPoints: 100);
        var all = await StoreFixture.ReadAllAsync(reopened, "dev", "temp", 0, 10_000, 1000);
        Assert.Equal(Enumerable.Range(0, 150).Select(i => new StoredPoint(i * 10L, i * 0.5)), all);
        Assert.Equal(
            [new LatestValue("hum", 5, 99, "%"), new LatestValue("temp", 1490, 74.5, null)],
            await reopened.GetLatestAsync("dev", None));

        // Appending after recovery continues the log without reusing sequence numbers.
        await reopened.AppendAsync(new[] { P(2000, 1) }, None);
        await reopened.CompactAsync(sealAll: true, None);
        Assert.Equal(151, (await StoreFixture.ReadAllAsync(reopened, "dev", "temp", 0, 10_000, 1000)).Count);
        Assert.Equal(0, fixture.CountRows("telemetry_log"));
    }

    [Fact]
    public async Task Committed_points_are_recovered_when_the_store_was_never_closed()
    {
        // Like a killed process: the first instance is neither disposed nor checkpointed before the second opens.
        var crashed = await fixture.OpenAsync(maxHeadPoints: 1000);
        await crashed.AppendAsync(Enumerable.Range(0, 300).Select(i => P(i, i)).ToArray(), None);

        var recovered = await fixture.OpenAsync(maxHeadPoints: 1000);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => new StoredPoint(i, i)), await StoreFixture.ReadAllAsync(recovered, "dev", "temp", 0, 1000, 1000));
    }

    [Fact]
    public async Task Latest_values_are_recovered_from_chunks_after_reopening()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 10);
        await store.AppendAsync(Enumerable.Range(0, 20).Select(i => P(i, i)).Reverse().ToArray(), None);
        await store.DisposeAsync();
        Assert.Equal(0, fixture.CountRows("telemetry_log"));

        var reopened = await fixture.OpenAsync(maxHeadPoints: 10);
        Assert.Equal([new LatestValue("temp", 19, 19, null)], await reopened.GetLatestAsync("dev", None));
    }

    [Fact]
    public async Task Full_heads_are_sealed_into_chunks_and_the_log_is_truncated()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 100);
        await store.AppendAsync(Enumerable.Range(0, 1050).Select(i => P(1_732_550_000_000 + (i * 1000L), 20 + (i % 7))).ToArray(), None);
        Assert.Equal(10, fixture.CountRows("telemetry_chunk"));
        Assert.Equal(50, fixture.CountRows("telemetry_log"));

        await store.CompactAsync(sealAll: true, None);
        Assert.Equal(11, fixture.CountRows("telemetry_chunk"));
        Assert.Equal(0, fixture.CountRows("telemetry_log"));
        Assert.Equal(1050, (await StoreFixture.ReadAllAsync(store, "dev", "temp", 0, long.MaxValue, 5000)).Count);
        Assert.True(store.SizeBytes > 0, "the store reports its size");
    }

    [Fact]
    public async Task Old_heads_are_sealed_by_the_background_compactor()
    {
        var store = await fixture.OpenAsync(compactionInterval: TimeSpan.FromMinutes(1), maxHeadAge: TimeSpan.FromMinutes(10));
        await store.AppendAsync(new[] { P(1, 1), P(2, 2) }, None);
        Assert.Equal(0, fixture.CountRows("telemetry_chunk"));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (fixture.CountRows("telemetry_chunk") == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "expected 1 chunk within 10 s of the head passing its age, saw 0");
            fixture.Time.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(10);
        }

        Assert.Equal(1, fixture.CountRows("telemetry_chunk"));
        Assert.Equal(0, fixture.CountRows("telemetry_log"));
        Assert.Equal([new StoredPoint(1, 1), new StoredPoint(2, 2)], (await store.QueryRawAsync("dev", "temp", 0, 10, 10, null, None)).Points);
    }

    [Fact]
    public async Task Retention_removes_points_older_than_the_cutoff_from_every_query()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 100);
        await store.AppendAsync(Enumerable.Range(0, 250).Select(i => P(i * 1000L, i)).ToArray(), None);
        await store.AppendAsync(new[] { P(10_000, 1, metric: "old") }, None);

        // Chunks cover [0, 99s] and [100s, 199s]; the head holds 200s..249s. The cutoff straddles the second chunk.
        var removed = await store.DeleteOlderThanAsync(150_000, None);
        Assert.Equal(101, removed);
        Assert.Equal(1, fixture.CountRows("telemetry_chunk"));

        var all = await StoreFixture.ReadAllAsync(store, "dev", "temp", 0, long.MaxValue, 37);
        Assert.Equal(Enumerable.Range(150, 100).Select(i => new StoredPoint(i * 1000L, i)), all);
        var bucket = Assert.Single(await store.QueryAggregatesAsync("dev", "temp", 0, 1_000_000, 1_000_000, None));
        Assert.Equal(100, bucket.Count);
        Assert.Equal(150, bucket.Min);
        Assert.Equal([new LatestValue("temp", 249_000, 249, null)], await store.GetLatestAsync("dev", None));

        // The cutoff is persisted: reopening does not bring old points back.
        await store.DisposeAsync();
        var reopened = await fixture.OpenAsync(maxHeadPoints: 100);
        Assert.Equal(100, (await StoreFixture.ReadAllAsync(reopened, "dev", "temp", 0, long.MaxValue, 1000)).Count);
        Assert.Empty((await reopened.QueryRawAsync("dev", "old", 0, long.MaxValue, 10, null, None)).Points);
    }

    [Fact]
    public async Task Deleting_a_device_removes_all_its_data()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 10);
        await store.AppendAsync(Enumerable.Range(0, 25).SelectMany(i => new[] { P(i, i, "a"), P(i, i, "b"), P(i, i, "a", "hum") }).ToArray(), None);
        await store.DeleteDeviceAsync("a", None);

        Assert.Empty(await store.GetLatestAsync("a", None));
        Assert.Empty((await store.QueryRawAsync("a", "temp", 0, 100, 100, null, None)).Points);
        Assert.Equal(25, (await store.QueryRawAsync("b", "temp", 0, 100, 100, null, None)).Points.Count);
        Assert.Equal(1, fixture.CountRows("series"));
        Assert.Equal(2, fixture.CountRows("telemetry_chunk"));
    }

    [Fact]
    public async Task A_thousand_interleaved_series_are_kept_apart()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 30);
        var batch = new List<TelemetryPoint>();
        for (var round = 0; round < 70; round++)
        {
            for (var s = 0; s < 1000; s++)
            {
                batch.Add(P(round * 1000L, (s * 1000) + round, $"device-{s % 100}", $"metric-{s / 100}"));
            }

            if (batch.Count >= 10_000)
            {
                await store.AppendAsync(batch.ToArray(), None);
                batch.Clear();
            }
        }

        await store.AppendAsync(batch.ToArray(), None);
        Assert.Equal(1000, fixture.CountRows("series"));
        Assert.Equal(2000, fixture.CountRows("telemetry_chunk"));
        Assert.Equal(10_000, fixture.CountRows("telemetry_log"));

        foreach (var s in new[] { 0, 1, 99, 100, 555, 999 })
        {
            var points = (await store.QueryRawAsync($"device-{s % 100}", $"metric-{s / 100}", 0, long.MaxValue, 1000, null, None)).Points;
            Assert.Equal(Enumerable.Range(0, 70).Select(r => new StoredPoint(r * 1000L, (s * 1000) + r)), points);
        }

        var latest = await store.GetLatestAsync("device-5", None);
        Assert.Equal(10, latest.Count);
        Assert.All(latest, l => Assert.Equal(69_000, l.TimestampMs));
    }

    [Fact]
    public async Task A_changed_unit_replaces_the_series_unit()
    {
        var store = await fixture.OpenAsync();
        await store.AppendAsync(new[] { P(1, 1, unit: "°C"), P(2, 2), P(3, 3, unit: "K") }, None);
        Assert.Equal("K", Assert.Single(await store.GetLatestAsync("dev", None)).Unit);
        await store.DisposeAsync();
        var reopened = await fixture.OpenAsync();
        Assert.Equal("K", Assert.Single(await reopened.GetLatestAsync("dev", None)).Unit);
    }

    [Fact]
    public async Task A_foreign_cursor_is_rejected()
    {
        var store = await fixture.OpenAsync();
        await store.AppendAsync(new[] { P(1, 1) }, None);
        await Assert.ThrowsAsync<ArgumentException>(() => store.QueryRawAsync("dev", "temp", 0, 10, 10, "not-a-cursor!", None));
    }

    [Fact]
    public async Task Queries_run_concurrently_with_appends_and_sealing()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 50);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await store.AppendAsync(Enumerable.Range(0, 20).Select(j => P((i * 20L) + j, 1)).ToArray(), None);
            }
        });
        var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            while (!writer.IsCompleted)
            {
                var all = await StoreFixture.ReadAllAsync(store, "dev", "temp", 0, long.MaxValue, 500);
                for (var i = 0; i < all.Count; i++)
                {
                    Assert.True(all[i].TimestampMs == i, $"expected a gapless prefix, saw ts {all[i].TimestampMs} at position {i}");
                }
            }
        })).ToArray();
        await Task.WhenAll(readers.Append(writer)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(4000, (await StoreFixture.ReadAllAsync(store, "dev", "temp", 0, long.MaxValue, 5000)).Count);
    }

    private static void AssertBucket(AggregateBucket expected, AggregateBucket seen)
    {
        Assert.True(
            expected.StartMs == seen.StartMs && expected.Count == seen.Count && expected.Min == seen.Min && expected.Max == seen.Max
                && Math.Abs(expected.Mean - seen.Mean) < 1e-12 && Math.Abs(expected.StdDev - seen.StdDev) < 1e-12,
            $"expected {expected}, saw {seen}");
    }
}
