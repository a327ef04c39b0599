using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Fieldline.Core.Telemetry;

namespace Fieldline.Benchmarks;

[MemoryDiagnoser]
public class TelemetryPayloadParserBenchmarks
{
    private readonly TelemetryPayloadParser parser = new();
    private readonly List<TelemetryPoint> output = new(1024);
    private ReadOnlySequence<byte> single;
    private ReadOnlySequence<byte> multi;
    private ReadOnlySequence<byte> array;

    [GlobalSetup]
    public void Setup()
    {
        single = new(Encoding.UTF8.GetBytes("""{"sensor_id":"dev-42","type":"temperature","value":21.5,"unit":"°C","location":"hall","timestamp":1732550000}"""));
        multi = new(Encoding.UTF8.GetBytes("""{"ts":1732550000123,"values":{"temperature":21.5,"humidity":40,"pressure":1013.25,"co2":412,"voltage":3.29}}"""));
        var elements = Enumerable.Range(0, 100).Select(i => $$"""{"type":"temperature","value":{{20 + (i * 0.1):F1}},"unit":"°C","timestamp":{{1732550000 + i}}}""");
        array = new(Encoding.UTF8.GetBytes("[" + string.Join(',', elements) + "]"));
        _ = SingleReading();
    }

    [Benchmark(Baseline = true)]
    public int SingleReading() => Parse(single);

    [Benchmark]
    public int MultiFiveValues() => Parse(multi);

    [Benchmark]
    public int ArrayOfHundred() => Parse(array);

    private int Parse(in ReadOnlySequence<byte> payload)
    {
        output.Clear();
        if (!parser.TryParse("dev-42", payload, 1_732_550_100_000, output, out var error))
        {
            throw new InvalidOperationException(error);
        }

        return output.Count;
    }
}
