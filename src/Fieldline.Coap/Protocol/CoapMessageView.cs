using System.Buffers.Binary;

namespace Fieldline.Coap.Protocol;

/// <summary>Why a datagram is not a well-formed CoAP message (RFC 7252 §3, §4.1: a message format error).</summary>
public enum CoapFormatError
{
    None,

    /// <summary>Fewer than the 4 bytes of the header; nothing can be answered.</summary>
    TooShort,

    /// <summary>The version is not 1; such messages are silently ignored (§3).</summary>
    UnsupportedVersion,

    /// <summary>Token length 9 to 15, which are reserved.</summary>
    TokenLengthReserved,

    /// <summary>The datagram ends inside the token or an option.</summary>
    Truncated,

    /// <summary>An option delta nibble of 15 that is not the payload marker.</summary>
    OptionDeltaReserved,

    /// <summary>An option length nibble of 15.</summary>
    OptionLengthReserved,

    /// <summary>An option number past 65,535.</summary>
    OptionNumberTooLarge,

    /// <summary>A payload marker followed by no payload (§3).</summary>
    EmptyPayloadAfterMarker,

    /// <summary>A 0.00 message with a token, options or payload (§4.1).</summary>
    EmptyMessageNotEmpty,
}

/// <summary>
/// A CoAP message read in place from a datagram, allocating nothing: the header fields, the token, the options
/// (validated once by <see cref="TryParse"/>, enumerated with <see cref="GetOptions"/>) and the payload.
/// </summary>
/// <remarks>
/// Design note. A malformed datagram is never an exception: <see cref="TryParse"/> returns why, and whenever the
/// 4-byte header was readable it still fills <see cref="Type"/>, <see cref="Code"/> and <see cref="MessageId"/>, so
/// that a server can answer a Confirmable message with a Reset (§4.2) and ignore anything else (§4.3).
/// </remarks>
public readonly ref struct CoapMessageView
{
    /// <summary>The payload marker that separates the options from the payload.</summary>
    public const byte PayloadMarker = 0xFF;

    private readonly ReadOnlySpan<byte> _options;

    private CoapMessageView(CoapMessageType type, CoapCode code, ushort messageId, ReadOnlySpan<byte> token, ReadOnlySpan<byte> options, ReadOnlySpan<byte> payload, bool hasHeader)
    {
        Type = type;
        Code = code;
        MessageId = messageId;
        Token = token;
        _options = options;
        Payload = payload;
        HasHeader = hasHeader;
    }

    public CoapMessageType Type { get; }

    public CoapCode Code { get; }

    public ushort MessageId { get; }

    /// <summary>0 to 8 bytes that match a response to its request.</summary>
    public ReadOnlySpan<byte> Token { get; }

    /// <summary>Everything after the payload marker (empty when there is none).</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>Whether the header was read (type, code and message id are meaningful), even when parsing failed.</summary>
    public bool HasHeader { get; }

    /// <summary>Reads <paramref name="datagram"/> as one CoAP message.</summary>
    public static CoapFormatError TryParse(ReadOnlySpan<byte> datagram, out CoapMessageView message)
    {
        message = default;
        if (datagram.Length < 4)
        {
            return CoapFormatError.TooShort;
        }

        var first = datagram[0];
        var type = (CoapMessageType)((first >> 4) & 3);
        var code = new CoapCode(datagram[1]);
        var messageId = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
        message = new CoapMessageView(type, code, messageId, default, default, default, hasHeader: true);
        if (first >> 6 != 1)
        {
            return CoapFormatError.UnsupportedVersion;
        }

        var tokenLength = first & 0x0F;
        if (tokenLength > 8)
        {
            return CoapFormatError.TokenLengthReserved;
        }

        if (code.IsEmpty && datagram.Length > 4)
        {
            return CoapFormatError.EmptyMessageNotEmpty;
        }

        if (datagram.Length < 4 + tokenLength)
        {
            return CoapFormatError.Truncated;
        }

        var token = datagram.Slice(4, tokenLength);
        var rest = datagram[(4 + tokenLength)..];
        var error = MeasureOptions(rest, out var optionsLength);
        if (error != CoapFormatError.None)
        {
            return error;
        }

        var payload = ReadOnlySpan<byte>.Empty;
        if (optionsLength < rest.Length)
        {
            // MeasureOptions stops only at the end or at the marker.
            payload = rest[(optionsLength + 1)..];
            if (payload.IsEmpty)
            {
                return CoapFormatError.EmptyPayloadAfterMarker;
            }
        }

        message = new CoapMessageView(type, code, messageId, token, rest[..optionsLength], payload, hasHeader: true);
        return CoapFormatError.None;
    }

    /// <summary>The options in order (already validated).</summary>
    public CoapOptionEnumerator GetOptions() => new(_options);

    /// <summary>The first value of option <paramref name="number"/>; false when absent.</summary>
    public bool TryGetOption(int number, out ReadOnlySpan<byte> value)
    {
        foreach (var option in GetOptions())
        {
            if (option.Number == number)
            {
                value = option.Value;
                return true;
            }

            if (option.Number > number)
            {
                break;
            }
        }

        value = default;
        return false;
    }

    /// <summary>The first value of a uint option (§3.2: big-endian, 0 to 4 bytes); false when absent or longer.</summary>
    public bool TryGetUInt(int number, out uint value)
    {
        value = 0;
        return TryGetOption(number, out var bytes) && CoapOption.TryReadUInt(bytes, out value);
    }

    private static CoapFormatError MeasureOptions(ReadOnlySpan<byte> rest, out int length)
    {
        var reader = new CoapOptionEnumerator(rest);
        while (true)
        {
            var error = reader.Advance();
            if (error == CoapFormatError.None)
            {
                continue;
            }

            length = reader.Consumed;
            return error == CoapOptionEnumerator.End ? CoapFormatError.None : error;
        }
    }
}

/// <summary>One option: its number and its value (bytes of the datagram).</summary>
public readonly ref struct CoapOption
{
    public CoapOption(int number, ReadOnlySpan<byte> value)
    {
        Number = number;
        Value = value;
    }

    public int Number { get; }

    public ReadOnlySpan<byte> Value { get; }

    /// <summary>A uint value in the fewest bytes (§3.2: 0 is no bytes at all).</summary>
    public static byte[] ToBytes(uint value)
    {
        var bytes = new byte[value == 0 ? 0 : value <= 0xFF ? 1 : value <= 0xFFFF ? 2 : value <= 0xFF_FFFF ? 3 : 4];
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)value;
            value >>= 8;
        }

        return bytes;
    }

    /// <summary>Reads a uint value: big-endian, leading zero bytes allowed, at most 4 bytes.</summary>
    public static bool TryReadUInt(ReadOnlySpan<byte> bytes, out uint value)
    {
        value = 0;
        if (bytes.Length > 4)
        {
            return false;
        }

        foreach (var b in bytes)
        {
            value = (value << 8) | b;
        }

        return true;
    }
}

/// <summary>Enumerates the options of a message, decoding the delta and length extensions of §3.1.</summary>
public ref struct CoapOptionEnumerator
{
    /// <summary>Returned by <see cref="Advance"/> at the end of the options (the end of data or the payload marker).</summary>
    internal const CoapFormatError End = (CoapFormatError)(-1);

    private readonly ReadOnlySpan<byte> _data;
    private int _position;
    private int _number;
    private CoapOption _current;

    internal CoapOptionEnumerator(ReadOnlySpan<byte> data)
    {
        _data = data;
    }

    public readonly CoapOption Current => _current;

    /// <summary>Bytes of options read so far (at the end: up to, not including, the payload marker).</summary>
    internal readonly int Consumed => _position;

    public readonly CoapOptionEnumerator GetEnumerator() => this;

    public bool MoveNext() => Advance() == CoapFormatError.None;

    internal CoapFormatError Advance()
    {
        if (_position >= _data.Length || _data[_position] == CoapMessageView.PayloadMarker)
        {
            return End;
        }

        var header = _data[_position];
        var position = _position + 1;
        if (!TryReadExtended(header >> 4, ref position, out var delta, CoapFormatError.OptionDeltaReserved, out var error)
            || !TryReadExtended(header & 0x0F, ref position, out var length, CoapFormatError.OptionLengthReserved, out error))
        {
            return error;
        }

        var number = _number + delta;
        if (number > ushort.MaxValue)
        {
            return CoapFormatError.OptionNumberTooLarge;
        }

        if (_data.Length - position < length)
        {
            return CoapFormatError.Truncated;
        }

        _current = new CoapOption(number, _data.Slice(position, length));
        _number = number;
        _position = position + length;
        return CoapFormatError.None;
    }

    private readonly bool TryReadExtended(int nibble, ref int position, out int value, CoapFormatError reserved, out CoapFormatError error)
    {
        error = CoapFormatError.None;
        value = nibble;
        switch (nibble)
        {
            case < 13:
                return true;
            case 13 when position < _data.Length:
                value = _data[position++] + 13;
                return true;
            case 14 when position + 1 < _data.Length:
                value = BinaryPrimitives.ReadUInt16BigEndian(_data[position..]) + 269;
                position += 2;
                return true;
            case 15:
                error = reserved;
                return false;
            default:
                error = CoapFormatError.Truncated;
                return false;
        }
    }
}
