using Fieldline.Core.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Fieldline.Storage.Sqlite.Tests.Telemetry;

public sealed class PipelineIntoStoreTests : IAsyncLifetime
{
    private readonly StoreFixture fixture = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => fixture.DisposeAsync().AsTask();

    [Fact]
    public async Task Points_acknowledged_by_the_pipeline_are_in_the_store_after_reopening()
    {
        var store = await fixture.OpenAsync(maxHeadPoints: 64);
        var pipeline = new TelemetryPipeline(store, Options.Create(new TelemetryPipelineOptions { MaxBatchPoints = 1000 }), NullLogger<TelemetryPipeline>.Instance, TimeProvider.System);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(device => Task.Run(async () =>
        {
            var points = new TelemetryPoint[5];
            for (var message = 0; message < 50; message++)
            {
                for (var i = 0; i < points.Length; i++)
                {
                    points[i] = new TelemetryPoint($"dev{device}", $"m{i}", message * 1000L, message);
                }

                await pipeline.Submit(points);
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));
        await pipeline.DisposeAsync();
        await store.DisposeAsync();

        var reopened = await fixture.OpenAsync(maxHeadPoints: 64);
        for (var device = 0; device < 20; device++)
        {
            var latest = await reopened.GetLatestAsync($"dev{device}", CancellationToken.None);
            Assert.True(latest.Count == 5, $"device {device}: expected 5 metrics, saw {latest.Count}");
            Assert.All(latest, l => Assert.Equal((49_000L, 49.0), (l.TimestampMs, l.Value)));
            var raw = await StoreFixture.ReadAllAsync(reopened, $"dev{device}", "m3", 0, long.MaxValue, 7);
            Assert.Equal(Enumerable.Range(0, 50).Select(m => new StoredPoint(m * 1000L, m)), raw);
        }
    }
}
