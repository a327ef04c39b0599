using Fieldline.Core.Telemetry;
using Fieldline.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Tests;

public sealed class TelemetryRetentionTests
{
    [Fact]
    public async Task Points_older_than_the_retention_are_deleted_on_the_next_pass()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));
        await using var env = await TestEnvironment.StartAsync(
            configuration: new Dictionary<string, string?> { ["Telemetry:RetentionDays"] = "7" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        var now = time.GetUtcNow();
        await env.Telemetry.AppendAsync(new TelemetryPoint[]
        {
            new("r-1", "temperature", now.AddDays(-8).ToUnixTimeMilliseconds(), 1),
            new("r-1", "temperature", now.AddDays(-1).ToUnixTimeMilliseconds(), 2),
        }, default);

        // The service may arm its timer after the first advance, so keep moving time on while polling.
        var remaining = await Poll.UntilAsync(
            async () =>
            {
                var points = (await env.Telemetry.QueryRawAsync("r-1", "temperature", 0, long.MaxValue, 10, null, default)).Points;
                if (points.Count != 1)
                {
                    time.Advance(TimeSpan.FromHours(1));
                }

                return points;
            },
            points => points.Count == 1,
            "one point left after retention");
        Assert.Equal(2, Assert.Single(remaining).Value);
    }
}
