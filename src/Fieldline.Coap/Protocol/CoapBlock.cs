namespace Fieldline.Coap.Protocol;

/// <summary>
/// The value of a Block1 or Block2 option (RFC 7959 §2.2): the block number, whether more blocks follow, and the
/// block size as SZX (size = 2^(SZX+4), 16 to 1024 bytes; SZX 7 is reserved).
/// </summary>
public readonly record struct CoapBlock(uint Number, bool More, int SizeExponent)
{
    /// <summary>The largest block number a 3-byte option can carry.</summary>
    public const uint MaximumNumber = (1u << 20) - 1;

    /// <summary>The block size in bytes.</summary>
    public int Size => 1 << (SizeExponent + 4);

    /// <summary>Where this block starts in the whole body.</summary>
    public long Offset => (long)Number * Size;

    /// <summary>The option's unsigned integer value.</summary>
    public uint ToUInt32() => (Number << 4) | (More ? 8u : 0u) | (uint)SizeExponent;

    /// <summary>Reads an option value; false when the SZX is the reserved 7.</summary>
    public static bool TryParse(uint value, out CoapBlock block)
    {
        block = new CoapBlock(value >> 4, (value & 8) != 0, (int)(value & 7));
        return block.SizeExponent != 7;
    }

    /// <summary>The SZX of the largest standard block size not above <paramref name="bytes"/> (at least 16).</summary>
    public static int ExponentFor(int bytes)
    {
        var exponent = 0;
        while (exponent < 6 && 1 << (exponent + 5) <= bytes)
        {
            exponent++;
        }

        return exponent;
    }
}
