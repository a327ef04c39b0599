using Fieldline.Core.Telemetry;
using Fieldline.Core.Telemetry.Compression;

namespace Fieldline.Core.Tests.Telemetry;

public sealed class ChunkCodecTests
{
    private static List<StoredPoint> RoundTrip(ReadOnlySpan<StoredPoint> points)
    {
        var chunk = ChunkEncoder.Encode(points);
        var decoder = new ChunkDecoder(chunk);
        Assert.Equal(points.Length, decoder.Count);
        var decoded = new List<StoredPoint>();
        while (decoder.TryNext(out var ts, out var value))
        {
            decoded.Add(new StoredPoint(ts, value));
        }

        return decoded;
    }

    private static void AssertBitExact(ReadOnlySpan<StoredPoint> expected, List<StoredPoint> seen)
    {
        Assert.Equal(expected.Length, seen.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(
                expected[i].TimestampMs == seen[i].TimestampMs && BitConverter.DoubleToInt64Bits(expected[i].Value) == BitConverter.DoubleToInt64Bits(seen[i].Value),
                $"point {i}: expected ({expected[i].TimestampMs}, {expected[i].Value:R}) but saw ({seen[i].TimestampMs}, {seen[i].Value:R})");
        }
    }

    [Fact]
    public void Edge_values_round_trip_bit_exactly()
    {
        double[] values =
        [
            0.0, -0.0, double.PositiveInfinity, double.NegativeInfinity, double.Epsilon, -double.Epsilon,
            2.2250738585072009e-308, double.MaxValue, double.MinValue, 1.0, 1.0, 21.5, 21.5000001, -1e-300, 1e300, 0.1, 0.2, 0.30000000000000004,
        ];
        var points = values.Select((v, i) => new StoredPoint(1_732_550_000_000 + (i * 1000), v)).ToArray();
        AssertBitExact(points, RoundTrip(points));
    }

    [Fact]
    public void Extreme_and_irregular_timestamps_round_trip()
    {
        long[] timestamps = [0, long.MaxValue, long.MinValue, -5, -5, -5, 10, 3, 1_732_550_000_000, 1_732_550_000_000, 1_732_550_000_001, 1_732_549_000_000, long.MaxValue, 0, 1, 1 << 20, -(1L << 40)];
        var points = timestamps.Select((t, i) => new StoredPoint(t, i)).ToArray();
        AssertBitExact(points, RoundTrip(points));
    }

    [Fact]
    public void Single_and_empty_chunks_round_trip()
    {
        AssertBitExact([], RoundTrip([]));
        StoredPoint[] one = [new(42, -0.0)];
        AssertBitExact(one, RoundTrip(one));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Random_series_round_trip(int seed)
    {
        var random = new Random(seed);
        for (var round = 0; round < 50; round++)
        {
            var count = random.Next(1, 600);
            var points = new StoredPoint[count];
            var ts = random.NextInt64(0, 2_000_000_000_000);
            var value = random.NextDouble() * 100;
            for (var i = 0; i < count; i++)
            {
                ts += random.Next(5) switch
                {
                    0 => 1000,
                    1 => random.Next(900, 1100),
                    2 => 0,
                    3 => random.NextInt64(-1_000_000, 100_000_000_000),
                    _ => random.Next(-100, 100),
                };
                value = random.Next(6) switch
                {
                    0 => value,
                    1 => value + random.Next(-3, 4),
                    2 => BitConverter.Int64BitsToDouble(random.NextInt64()) is var d && !double.IsNaN(d) ? d : 0,
                    3 => Math.Round(random.NextDouble() * 50, 1),
                    _ => random.NextDouble(),
                };
                points[i] = new StoredPoint(ts, value);
            }

            AssertBitExact(points, RoundTrip(points));
        }
    }

    [Fact]
    public void Regular_series_compress_to_a_few_bits_per_point()
    {
        var points = Enumerable.Range(0, 240).Select(i => new StoredPoint(1_732_550_000_000 + (i * 10_000L), 20 + ((i % 10) * 0.5))).ToArray();
        var chunk = ChunkEncoder.Encode(points);
        Assert.True(chunk.Length < 240 * 3, $"expected under 3 bytes per point, saw {chunk.Length / 240.0:F2}");
    }

    [Fact]
    public void Truncated_chunks_fail_clearly()
    {
        var chunk = ChunkEncoder.Encode([new(1, 1.5), new(2, 2.5), new(1000, 1e10)]);
        var truncated = chunk.AsSpan(0, chunk.Length - 3).ToArray();
        Assert.Throws<InvalidDataException>(() =>
        {
            var decoder = new ChunkDecoder(truncated);
            while (decoder.TryNext(out _, out _))
            {
            }
        });
    }

    [Fact]
    public void Encoder_reset_starts_a_fresh_chunk()
    {
        using var encoder = new ChunkEncoder();
        encoder.Append(5, 1);
        encoder.Append(9, 2);
        encoder.Reset();
        encoder.Append(100, 3);
        var decoder = new ChunkDecoder(encoder.ToArray());
        Assert.True(decoder.TryNext(out var ts, out var value));
        Assert.Equal((100L, 3.0), (ts, value));
        Assert.False(decoder.TryNext(out _, out _));
    }
}
