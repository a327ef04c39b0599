using System.Buffers.Binary;
using System.Text.Unicode;

namespace Fieldline.Mqtt.Protocol;

/// <summary>
/// Reads MQTT data types (OASIS MQTT 5.0, 1.5) from a packet body. Every read checks the remaining length and
/// throws <see cref="MqttProtocolException"/> on truncation, so decoders need no bounds checks of their own.
/// </summary>
internal ref struct MqttSpanReader
{
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public MqttSpanReader(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _span.Length - _position;

    public readonly bool End => _position >= _span.Length;

    public readonly ReadOnlySpan<byte> RemainingSpan => _span[_position..];

    public byte ReadByte()
    {
        if (_position >= _span.Length)
        {
            throw MqttProtocolException.Malformed("Packet truncated.");
        }

        return _span[_position++];
    }

    public ushort ReadUInt16()
    {
        var value = BinaryPrimitives.ReadUInt16BigEndian(Take(2));
        return value;
    }

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    /// <summary>A Variable Byte Integer (1..4 bytes, at most 268,435,455).</summary>
    public int ReadVariableByteInteger()
    {
        var value = 0;
        var multiplier = 1;
        for (var i = 0; i < 4; i++)
        {
            var b = ReadByte();
            value += (b & 0x7F) * multiplier;
            if ((b & 0x80) == 0)
            {
                return value;
            }

            multiplier *= 128;
        }

        throw MqttProtocolException.Malformed("Variable byte integer longer than 4 bytes.");
    }

    /// <summary>Binary Data: a two-byte length and that many bytes.</summary>
    public ReadOnlySpan<byte> ReadBinary()
    {
        int length = ReadUInt16();
        return Take(length);
    }

    /// <summary>A UTF-8 Encoded String, checked for well-formed UTF-8 without U+0000 (MQTT-1.5.4-1, -2).</summary>
    public ReadOnlySpan<byte> ReadUtf8String()
    {
        var bytes = ReadBinary();
        ValidateUtf8(bytes);
        return bytes;
    }

    public ReadOnlySpan<byte> Take(int length)
    {
        if (length < 0 || length > _span.Length - _position)
        {
            throw MqttProtocolException.Malformed("Packet truncated.");
        }

        var slice = _span.Slice(_position, length);
        _position += length;
        return slice;
    }

    public static void ValidateUtf8(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Contains((byte)0) || !Utf8.IsValid(bytes))
        {
            throw MqttProtocolException.Malformed("String is not well-formed UTF-8.");
        }
    }
}
