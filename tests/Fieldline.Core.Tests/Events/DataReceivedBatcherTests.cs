using Fieldline.Core.Events;
using Fieldline.Core.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Core.Tests.Events;

public sealed class DataReceivedBatcherTests
{
    private const long T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    [Fact]
    public void Messages_of_a_window_become_one_event_per_device_with_counts_and_each_metrics_latest_value()
    {
        var bus = new EventBus(new FakeTimeProvider());
        var batcher = new DataReceivedBatcher(bus, TimeSpan.FromSeconds(10));

        batcher.Record("a", [new("a", "temperature", T0, 20.5, "°C"), new("a", "humidity", T0, 40)]);
        batcher.Record("a", [new("a", "temperature", T0 + 2_000, 21.5, "°C")]);
        batcher.Record("a", [new("a", "temperature", T0 + 1_000, 99)]); // late and out of order: not the latest
        batcher.Record("b", [new("b", "rpm", T0 + 500, 1200)]);

        Assert.Equal(2, batcher.Flush());
        var events = Published(bus);
        Assert.All(events, e => Assert.Equal(EventTypes.DataReceived, e.EventType));
        var a = Assert.Single(events, e => e.DeviceId == "a").Payload;
        Assert.Equal(3, (long)a["messages"]!);
        Assert.Equal(4, (long)a["points"]!);
        Assert.Equal("2026-01-01T00:00:00.000Z", (string?)a["first_timestamp"]);
        Assert.Equal("2026-01-01T00:00:02.000Z", (string?)a["last_timestamp"]);
        Assert.Equal(21.5, (double)a["metrics"]!["temperature"]!["value"]!);
        Assert.Equal("°C", (string?)a["metrics"]!["temperature"]!["unit"]);
        Assert.Equal(40, (double)a["metrics"]!["humidity"]!["value"]!);
        Assert.Null(a["metrics"]!["humidity"]!["unit"]);
        Assert.Equal(1, (long)Assert.Single(events, e => e.DeviceId == "b").Payload["messages"]!);
    }

    [Fact]
    public void A_window_without_data_publishes_nothing_and_the_next_window_starts_from_zero()
    {
        var bus = new EventBus(new FakeTimeProvider());
        var batcher = new DataReceivedBatcher(bus, TimeSpan.FromSeconds(1));

        batcher.Record("a", [new("a", "temperature", T0, 20)]);
        Assert.Equal(1, batcher.Flush());
        Assert.Equal(0, batcher.Flush()); // idle: the device is forgotten
        Assert.Equal(0, batcher.Flush());
        batcher.Record("a", [new("a", "pressure", T0 + 5_000, 1013)]);
        Assert.Equal(1, batcher.Flush());

        var last = Published(bus)[^1].Payload;
        Assert.Equal(1, (long)last["messages"]!);
        Assert.Equal(1, (long)last["points"]!);
        Assert.Null(last["metrics"]!["temperature"]);
        Assert.Equal(1013, (double)last["metrics"]!["pressure"]!["value"]!);
    }

    [Fact]
    public void Metrics_beyond_the_maximum_are_counted_but_not_shown()
    {
        var bus = new EventBus(new FakeTimeProvider());
        var batcher = new DataReceivedBatcher(bus, TimeSpan.FromSeconds(1));
        var points = Enumerable.Range(0, DataReceivedBatcher.MaximumMetrics + 3).Select(i => new TelemetryPoint("a", $"m{i}", T0, i)).ToArray();

        batcher.Record("a", points);
        batcher.Flush();

        var payload = Published(bus)[0].Payload;
        Assert.Equal(DataReceivedBatcher.MaximumMetrics + 3, (long)payload["points"]!);
        Assert.Equal(DataReceivedBatcher.MaximumMetrics, payload["metrics"]!.AsObject().Count);
        Assert.Equal(3, (long)payload["points_of_metrics_not_shown"]!);
    }

    [Fact]
    public async Task Concurrent_recording_and_flushing_loses_no_message()
    {
        var bus = new EventBus(new FakeTimeProvider());
        var batcher = new DataReceivedBatcher(bus, TimeSpan.FromSeconds(1));
        const int Writers = 4, PerWriter = 20_000;
        var done = 0;

        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            TelemetryPoint[] point = [new($"d{w % 2}", "x", T0, w)];
            for (var i = 0; i < PerWriter; i++)
            {
                batcher.Record(point[0].DeviceId, point);
            }

            Interlocked.Increment(ref done);
        })).ToArray();
        for (var flushes = 0; flushes < 2_000 && Volatile.Read(ref done) < Writers; flushes++)
        {
            batcher.Flush(); // at most 2 events each: far below the bus's retention
            Thread.Yield();
        }

        await Task.WhenAll(writers);
        batcher.Flush();

        var total = Published(bus).Sum(e => (long)e.Payload["messages"]!);
        Assert.Equal((long)Writers * PerWriter, total);
    }

    private static IReadOnlyList<PlatformEvent> Published(EventBus bus) => bus.Retained(EventFilter.Everything, 0);
}
