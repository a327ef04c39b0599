using System.Buffers.Binary;

namespace Fieldline.Core.Telemetry.Compression;

/// <summary>Reads bit fields most-significant-bit first, as written by <see cref="BitWriter"/>.</summary>
internal ref struct BitReader
{
    private readonly ReadOnlySpan<byte> data;
    private long bitPosition;

    public BitReader(ReadOnlySpan<byte> data) => this.data = data;

    public bool ReadBit() => ReadSmall(1) != 0;

    /// <summary>Reads <paramref name="count"/> (0..64) bits as an unsigned number.</summary>
    public ulong ReadBits(int count)
    {
        if (count <= 56)
        {
            return ReadSmall(count);
        }

        var high = ReadSmall(count - 32);
        return (high << 32) | ReadSmall(32);
    }

    // Reads up to 56 bits with one unaligned 8-byte load: the field plus its bit offset (at most 7) fit in a word.
    private ulong ReadSmall(int count)
    {
        if (count == 0)
        {
            return 0;
        }

        if (bitPosition + count > data.Length * 8L)
        {
            throw new InvalidDataException("The chunk is truncated.");
        }

        var byteIndex = (int)(bitPosition >> 3);
        ulong word;
        if (byteIndex + 8 <= data.Length)
        {
            word = BinaryPrimitives.ReadUInt64BigEndian(data[byteIndex..]);
        }
        else
        {
            Span<byte> padded = stackalloc byte[8];
            padded.Clear();
            data[byteIndex..].CopyTo(padded);
            word = BinaryPrimitives.ReadUInt64BigEndian(padded);
        }

        var value = (word << (int)(bitPosition & 7)) >> (64 - count);
        bitPosition += count;
        return value;
    }
}
