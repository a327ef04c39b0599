using BenchmarkDotNet.Attributes;
using Fieldline.Core.Events;
using Fieldline.Core.Telemetry;

namespace Fieldline.Benchmarks;

/// <summary>The cost the DataReceived events add to every accepted telemetry message.</summary>
[MemoryDiagnoser]
public class DataReceivedBatcherBenchmarks
{
    private readonly DataReceivedBatcher batcher = new(new EventBus(TimeProvider.System), TimeSpan.FromSeconds(10));
    private readonly string[] devices = Enumerable.Range(0, 1000).Select(i => $"dev-{i}").ToArray();
    private TelemetryPoint[] fivePoints = [];
    private int next;

    [GlobalSetup]
    public void Setup()
    {
        fivePoints = new[] { "temperature", "humidity", "pressure", "co2", "voltage" }.Select((m, i) => new TelemetryPoint("dev-0", m, 1_732_550_000_000, i)).ToArray();
        foreach (var device in devices)
        {
            batcher.Record(device, fivePoints);
        }
    }

    /// <summary>One message of five metrics, from 1,000 devices in turn.</summary>
    [Benchmark]
    public void RecordFivePoints()
    {
        var device = devices[next];
        next = next == devices.Length - 1 ? 0 : next + 1;
        batcher.Record(device, fivePoints);
    }
}
