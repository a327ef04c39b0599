using System.Buffers.Binary;
using System.Numerics;

namespace Fieldline.Core.Telemetry.Compression;

/// <summary>
/// Compresses a run of (timestamp, value) points of one series into a chunk, Gorilla style
/// (Pelkonen et al., "Gorilla: A Fast, Scalable, In-Memory Time Series Database", VLDB 2015; as in Prometheus XOR chunks).
/// Any order and any doubles round-trip exactly; sorted, regular data compresses best.
/// </summary>
public sealed class ChunkEncoder : IDisposable
{
    // Design note. Chunk layout, bits most significant first:
    //   header: point count (32), first timestamp (64), first value bits (64)
    //   then per point a timestamp field and a value field.
    // Timestamps are stored as the delta of deltas (dod), in the smallest of these buckets that holds it:
    //   '0' dod = 0 | '10' + 7 bits | '110' + 14 bits | '1110' + 20 bits | '1111' + 64 bits (two's complement).
    // Regular sampling costs one bit; millisecond jitter a few bytes at most. Arithmetic wraps (unchecked), so
    // huge or negative deltas still decode exactly: the decoder performs the same wrapping additions.
    // Values are XOR-ed with the previous value's bits:
    //   '0' same value | '10' + meaningful bits inside the previous leading/trailing-zero window
    //   | '11' + leading zeros (5 bits, capped at 31) + meaningful bit count (6 bits, 64 stored as 0) + the bits.
    // Working on the raw IEEE 754 bits makes -0.0, infinities, subnormals and NaN payloads round-trip unchanged.
    internal const int HeaderBytes = 4;

    private readonly BitWriter writer = new();
    private long previousTimestamp;
    private long previousDelta;
    private ulong previousValueBits;
    private int previousLeading = -1;
    private int previousTrailing;

    /// <summary>Points appended since creation or the last <see cref="Reset"/>.</summary>
    public int Count { get; private set; }

    /// <summary>Appends a point.</summary>
    public void Append(long timestampMs, double value)
    {
        var bits = BitConverter.DoubleToUInt64Bits(value);
        if (Count == 0)
        {
            writer.WriteBits((ulong)timestampMs, 64);
            writer.WriteBits(bits, 64);
        }
        else
        {
            var delta = unchecked(timestampMs - previousTimestamp);
            WriteDeltaOfDelta(unchecked(delta - previousDelta));
            previousDelta = delta;
            WriteValue(bits);
        }

        previousTimestamp = timestampMs;
        previousValueBits = bits;
        Count++;
    }

    /// <summary>The finished chunk. The encoder can keep appending afterwards.</summary>
    public byte[] ToArray()
    {
        var result = new byte[HeaderBytes + writer.ByteLength];
        BinaryPrimitives.WriteInt32BigEndian(result, Count);
        writer.CopyTo(result.AsSpan(HeaderBytes));
        return result;
    }

    /// <summary>Starts a new chunk, keeping the buffer.</summary>
    public void Reset()
    {
        writer.Reset();
        Count = 0;
        previousDelta = 0;
        previousLeading = -1;
        previousTrailing = 0;
    }

    /// <summary>Encodes <paramref name="points"/> in the given order.</summary>
    public static byte[] Encode(ReadOnlySpan<StoredPoint> points)
    {
        using var encoder = new ChunkEncoder();
        foreach (var point in points)
        {
            encoder.Append(point.TimestampMs, point.Value);
        }

        return encoder.ToArray();
    }

    /// <summary>Returns the pooled buffer.</summary>
    public void Dispose() => writer.Dispose();

    private void WriteDeltaOfDelta(long dod)
    {
        if (dod == 0)
        {
            writer.WriteBits(0b0, 1);
        }
        else if (Fits(dod, 7))
        {
            writer.WriteBits(0b10, 2);
            writer.WriteBits((ulong)dod, 7);
        }
        else if (Fits(dod, 14))
        {
            writer.WriteBits(0b110, 3);
            writer.WriteBits((ulong)dod, 14);
        }
        else if (Fits(dod, 20))
        {
            writer.WriteBits(0b1110, 4);
            writer.WriteBits((ulong)dod, 20);
        }
        else
        {
            writer.WriteBits(0b1111, 4);
            writer.WriteBits((ulong)dod, 64);
        }
    }

    private void WriteValue(ulong bits)
    {
        var xor = bits ^ previousValueBits;
        if (xor == 0)
        {
            writer.WriteBits(0b0, 1);
            return;
        }

        var leading = Math.Min(BitOperations.LeadingZeroCount(xor), 31);
        var trailing = BitOperations.TrailingZeroCount(xor);
        if (previousLeading >= 0 && leading >= previousLeading && trailing >= previousTrailing)
        {
            writer.WriteBits(0b10, 2);
            writer.WriteBits(xor >> previousTrailing, 64 - previousLeading - previousTrailing);
            return;
        }

        var significant = 64 - leading - trailing;
        writer.WriteBits(0b11, 2);
        writer.WriteBits((ulong)leading, 5);
        writer.WriteBits((ulong)(significant & 63), 6);
        writer.WriteBits(xor >> trailing, significant);
        previousLeading = leading;
        previousTrailing = trailing;
    }

    private static bool Fits(long value, int bits) => value >= -(1L << (bits - 1)) && value < (1L << (bits - 1));
}
