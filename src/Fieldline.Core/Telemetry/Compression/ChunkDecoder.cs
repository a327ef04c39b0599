using System.Buffers.Binary;

namespace Fieldline.Core.Telemetry.Compression;

/// <summary>Iterates the points of a chunk written by <see cref="ChunkEncoder"/>, in the order they were appended.</summary>
public ref struct ChunkDecoder
{
    private BitReader reader;
    private int remaining;
    private int index;
    private long previousTimestamp;
    private long previousDelta;
    private ulong previousValueBits;
    private int previousLeading;
    private int previousTrailing;

    /// <summary>Starts decoding <paramref name="chunk"/>.</summary>
    /// <exception cref="InvalidDataException">The chunk is shorter than its header.</exception>
    public ChunkDecoder(ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length < ChunkEncoder.HeaderBytes)
        {
            throw new InvalidDataException("The chunk is shorter than its header.");
        }

        Count = BinaryPrimitives.ReadInt32BigEndian(chunk);
        if (Count < 0)
        {
            throw new InvalidDataException("The chunk has a negative point count.");
        }

        remaining = Count;
        reader = new BitReader(chunk[ChunkEncoder.HeaderBytes..]);
    }

    /// <summary>The number of points in the chunk.</summary>
    public int Count { get; }

    /// <summary>Reads the next point; false after the last one.</summary>
    /// <exception cref="InvalidDataException">The chunk is truncated.</exception>
    public bool TryNext(out long timestampMs, out double value)
    {
        if (remaining == 0)
        {
            timestampMs = 0;
            value = 0;
            return false;
        }

        if (index == 0)
        {
            previousTimestamp = (long)reader.ReadBits(64);
            previousValueBits = reader.ReadBits(64);
        }
        else
        {
            previousDelta = unchecked(previousDelta + ReadDeltaOfDelta());
            previousTimestamp = unchecked(previousTimestamp + previousDelta);
            previousValueBits ^= ReadXor();
        }

        index++;
        remaining--;
        timestampMs = previousTimestamp;
        value = BitConverter.UInt64BitsToDouble(previousValueBits);
        return true;
    }

    private long ReadDeltaOfDelta()
    {
        if (!reader.ReadBit())
        {
            return 0;
        }

        if (!reader.ReadBit())
        {
            return SignExtend(reader.ReadBits(7), 7);
        }

        if (!reader.ReadBit())
        {
            return SignExtend(reader.ReadBits(14), 14);
        }

        return !reader.ReadBit() ? SignExtend(reader.ReadBits(20), 20) : (long)reader.ReadBits(64);
    }

    private ulong ReadXor()
    {
        if (!reader.ReadBit())
        {
            return 0;
        }

        if (reader.ReadBit())
        {
            previousLeading = (int)reader.ReadBits(5);
            var significant = (int)reader.ReadBits(6);
            if (significant == 0)
            {
                significant = 64;
            }

            previousTrailing = 64 - previousLeading - significant;
            if (previousTrailing < 0)
            {
                throw new InvalidDataException("The chunk is corrupt.");
            }
        }

        var meaningful = 64 - previousLeading - previousTrailing;
        return reader.ReadBits(meaningful) << previousTrailing;
    }

    private static long SignExtend(ulong bits, int width) => (long)(bits << (64 - width)) >> (64 - width);
}
