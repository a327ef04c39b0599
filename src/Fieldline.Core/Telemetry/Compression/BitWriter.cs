using System.Buffers;
using System.Buffers.Binary;

namespace Fieldline.Core.Telemetry.Compression;

/// <summary>Writes bit fields most-significant-bit first into a pooled, growing buffer.</summary>
internal sealed class BitWriter : IDisposable
{
    // Bits are gathered left-aligned in a 64-bit accumulator and stored as whole big-endian words, so a write
    // is a couple of shifts and only every 64th bit touches memory.
    private byte[] buffer;
    private int byteLength;
    private ulong pending;
    private int pendingBits;

    public BitWriter(int initialCapacity = 256) => buffer = ArrayPool<byte>.Shared.Rent(Math.Max(16, initialCapacity));


    /// <summary>Bytes the finished output takes (the last byte padded with zero bits).</summary>
    public int ByteLength => byteLength + ((pendingBits + 7) >> 3);

    /// <summary>Writes the low <paramref name="count"/> bits (0..64) of <paramref name="value"/>.</summary>
    public void WriteBits(ulong value, int count)
    {
        if (count == 0)
        {
            return;
        }

        if (count < 64)
        {
            value &= (1UL << count) - 1;
        }

        var free = 64 - pendingBits;
        if (count < free)
        {
            pending |= value << (free - count);
            pendingBits += count;
            return;
        }

        var rest = count - free;
        pending |= value >> rest;
        FlushWord();
        if (rest > 0)
        {
            pending = value << (64 - rest);
            pendingBits = rest;
        }
    }

    /// <summary>Copies the written bits, padded to whole bytes, into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<byte> destination)
    {
        buffer.AsSpan(0, byteLength).CopyTo(destination);
        var tail = (pendingBits + 7) >> 3;
        Span<byte> word = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(word, pending);
        word[..tail].CopyTo(destination[byteLength..]);
    }

    public void Reset()
    {
        byteLength = 0;
        pending = 0;
        pendingBits = 0;
    }

    public void Dispose()
    {
        var toReturn = buffer;
        buffer = [];
        if (toReturn.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(toReturn);
        }
    }

    private void FlushWord()
    {
        if (byteLength + 8 > buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
            buffer.AsSpan(0, byteLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = larger;
        }

        BinaryPrimitives.WriteUInt64BigEndian(buffer.AsSpan(byteLength), pending);
        byteLength += 8;
        pending = 0;
        pendingBits = 0;
    }
}
