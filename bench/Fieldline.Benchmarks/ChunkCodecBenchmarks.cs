using BenchmarkDotNet.Attributes;
using Fieldline.Core.Telemetry.Compression;

namespace Fieldline.Benchmarks;

/// <summary>Encoding and decoding one 240-point chunk of a typical sensor series (10 s period, jitter, 0.1 resolution).</summary>
[MemoryDiagnoser]
public class ChunkCodecBenchmarks
{
    private readonly ChunkEncoder encoder = new();
    private long[] timestamps = [];
    private double[] values = [];
    private byte[] chunk = [];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        timestamps = new long[240];
        values = new double[240];
        var ts = 1_732_550_000_000L;
        var value = 21.5;
        for (var i = 0; i < timestamps.Length; i++)
        {
            ts += 10_000 + random.Next(-20, 21);
            value = Math.Round(value + ((random.NextDouble() - 0.5) * 0.4), 1);
            timestamps[i] = ts;
            values[i] = value;
        }

        chunk = Encode();
    }

    [Benchmark]
    public byte[] Encode()
    {
        encoder.Reset();
        for (var i = 0; i < timestamps.Length; i++)
        {
            encoder.Append(timestamps[i], values[i]);
        }

        return encoder.ToArray();
    }

    [Benchmark]
    public double Decode()
    {
        var decoder = new ChunkDecoder(chunk);
        var sum = 0.0;
        while (decoder.TryNext(out _, out var value))
        {
            sum += value;
        }

        return sum;
    }

    [GlobalCleanup]
    public void Cleanup() => encoder.Dispose();
}
