using System.Buffers.Binary;
using System.Text;

namespace Fieldline.Coap.Protocol;

/// <summary>
/// Writes one CoAP message into a caller's buffer, allocating nothing: the header and token first, then options in
/// ascending number (the writer computes the deltas of §3.1), then the payload behind its marker.
/// </summary>
public ref struct CoapMessageWriter
{
    private readonly Span<byte> _buffer;
    private int _length;
    private int _lastOption;
    private bool _payloadWritten;

    /// <summary>Starts a message; <paramref name="token"/> is 0 to 8 bytes.</summary>
    public CoapMessageWriter(Span<byte> buffer, CoapMessageType type, CoapCode code, ushort messageId, ReadOnlySpan<byte> token)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(token.Length, 8, nameof(token));
        _buffer = buffer;
        Ensure(4 + token.Length);
        _buffer[0] = (byte)(0x40 | ((int)type << 4) | token.Length);
        _buffer[1] = code.Value;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[2..], messageId);
        token.CopyTo(_buffer[4..]);
        _length = 4 + token.Length;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Length => _length;

    /// <summary>The message written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer[.._length];

    /// <summary>Appends an option; options must come in ascending number (repeats allowed).</summary>
    public void WriteOption(int number, ReadOnlySpan<byte> value)
    {
        WriteOptionHeader(number, value.Length);
        value.CopyTo(_buffer[_length..]);
        _length += value.Length;
    }

    /// <summary>Appends a uint option in the fewest bytes (0 is written as no bytes, §3.2).</summary>
    public void WriteOption(int number, uint value)
    {
        var length = value == 0 ? 0 : value <= 0xFF ? 1 : value <= 0xFFFF ? 2 : value <= 0xFF_FFFF ? 3 : 4;
        WriteOptionHeader(number, length);
        for (var i = length - 1; i >= 0; i--)
        {
            _buffer[_length + i] = (byte)value;
            value >>= 8;
        }

        _length += length;
    }

    /// <summary>Appends a string option, UTF-8 encoded.</summary>
    public void WriteOption(int number, ReadOnlySpan<char> value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteOptionHeader(number, length);
        _length += Encoding.UTF8.GetBytes(value, _buffer[_length..]);
    }

    /// <summary>Appends the payload marker and the payload; nothing when it is empty (§3: no marker then).</summary>
    public void WritePayload(ReadOnlySpan<byte> payload)
    {
        if (_payloadWritten)
        {
            throw new InvalidOperationException("The payload was written already.");
        }

        _payloadWritten = true;
        if (payload.IsEmpty)
        {
            return;
        }

        Ensure(1 + payload.Length);
        _buffer[_length++] = CoapMessageView.PayloadMarker;
        payload.CopyTo(_buffer[_length..]);
        _length += payload.Length;
    }

    /// <summary>An empty message (code 0.00, no token): an empty ACK, a Reset, or a ping (§4.1).</summary>
    public static byte[] EmptyMessage(CoapMessageType type, ushort messageId)
    {
        var bytes = new byte[4];
        _ = new CoapMessageWriter(bytes, type, CoapCode.Empty, messageId, []);
        return bytes;
    }

    /// <summary>The size of an option of <paramref name="delta"/> and <paramref name="length"/> on the wire.</summary>
    public static int OptionSize(int delta, int length) => 1 + ExtensionSize(delta) + ExtensionSize(length) + length;

    private void WriteOptionHeader(int number, int length)
    {
        if (_payloadWritten)
        {
            throw new InvalidOperationException("Options come before the payload.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(number, _lastOption, nameof(number));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(number, ushort.MaxValue, nameof(number));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, ushort.MaxValue + 269, nameof(length));
        var delta = number - _lastOption;
        Ensure(OptionSize(delta, length));
        var header = _length++;
        _buffer[header] = (byte)((Nibble(delta) << 4) | Nibble(length));
        WriteExtension(delta);
        WriteExtension(length);
        _lastOption = number;
    }

    private void WriteExtension(int value)
    {
        if (value >= 269)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[_length..], (ushort)(value - 269));
            _length += 2;
        }
        else if (value >= 13)
        {
            _buffer[_length++] = (byte)(value - 13);
        }
    }

    private static int Nibble(int value) => value >= 269 ? 14 : value >= 13 ? 13 : value;

    private static int ExtensionSize(int value) => value >= 269 ? 2 : value >= 13 ? 1 : 0;

    private readonly void Ensure(int bytes)
    {
        if (_length + bytes > _buffer.Length)
        {
            throw new InvalidOperationException($"The message needs {_length + bytes} bytes; the buffer has {_buffer.Length}.");
        }
    }
}
