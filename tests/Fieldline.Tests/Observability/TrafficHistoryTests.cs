using Fieldline.Observability;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Tests.Observability;

public sealed class TrafficHistoryTests
{
    [Fact]
    public void Rates_are_the_totals_differences_over_the_time_that_really_passed()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 9, 0, 0, TimeSpan.Zero));
        var totals = (Received: 100L, Sent: 50L);
        var history = new TrafficHistory(time, () => totals);

        time.Advance(TimeSpan.FromSeconds(1));
        totals = (130, 50);
        history.Sample();
        time.Advance(TimeSpan.FromSeconds(2)); // a late tick: the 40 messages are spread over 2 s
        totals = (170, 90);
        history.Sample();

        var samples = history.Since(0);
        Assert.Equal(2, samples.Count);
        Assert.Equal(new TrafficSample(time.GetUtcNow().AddSeconds(-2).ToUnixTimeMilliseconds(), 30, 0), samples[0]);
        Assert.Equal(new TrafficSample(time.GetUtcNow().ToUnixTimeMilliseconds(), 20, 20), samples[1]);
        Assert.Equal([samples[1]], history.Since(samples[0].Time));
    }

    [Fact]
    public void Fifteen_minutes_of_samples_are_kept_and_the_oldest_go_first()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 9, 0, 0, TimeSpan.Zero));
        var received = 0L;
        var history = new TrafficHistory(time, () => (received, 0));

        for (var i = 1; i <= TrafficHistory.Capacity + 10; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            received += i;
            history.Sample();
        }

        var samples = history.Since(0);
        Assert.Equal(TrafficHistory.Capacity, samples.Count);
        Assert.Equal(11, samples[0].In);
        Assert.Equal(TrafficHistory.Capacity + 10, samples[^1].In);
        Assert.True(samples.Zip(samples.Skip(1)).All(p => p.First.Time < p.Second.Time), "samples oldest first");
    }
}
