using System.Buffers.Binary;

namespace Fieldline.Mqtt.Protocol;

/// <summary>Writes MQTT data types into a span sized beforehand by the encoder.</summary>
internal ref struct MqttSpanWriter
{
    private readonly Span<byte> _span;
    private int _position;

    public MqttSpanWriter(Span<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Position => _position;

    public void WriteByte(byte value) => _span[_position++] = value;

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_span[_position..], value);
        _position += 2;
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_span[_position..], value);
        _position += 4;
    }

    public void WriteVariableByteInteger(int value)
    {
        do
        {
            var b = (byte)(value % 128);
            value /= 128;
            if (value > 0)
            {
                b |= 0x80;
            }

            _span[_position++] = b;
        }
        while (value > 0);
    }

    public void WriteBinary(scoped ReadOnlySpan<byte> value)
    {
        WriteUInt16((ushort)value.Length);
        WriteBytes(value);
    }

    public void WriteBytes(scoped ReadOnlySpan<byte> value)
    {
        value.CopyTo(_span[_position..]);
        _position += value.Length;
    }

    /// <summary>The number of bytes a Variable Byte Integer takes.</summary>
    public static int VariableByteIntegerSize(int value) => value switch
    {
        < 128 => 1,
        < 16_384 => 2,
        < 2_097_152 => 3,
        _ => 4,
    };
}
