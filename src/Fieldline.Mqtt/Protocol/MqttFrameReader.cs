using System.Buffers;

namespace Fieldline.Mqtt.Protocol;

/// <summary>What <see cref="MqttFrameReader.TryReadFrame"/> found at the start of the buffer.</summary>
internal enum MqttFrameStatus
{
    /// <summary>A whole packet is there.</summary>
    Complete,

    /// <summary>More bytes are needed.</summary>
    Incomplete,

    /// <summary>The remaining length is not a valid Variable Byte Integer.</summary>
    Malformed,

    /// <summary>The packet is larger than the maximum packet size.</summary>
    TooLarge,
}

/// <summary>The fixed header of a packet and its body (variable header and payload).</summary>
internal readonly struct MqttFrame
{
    public MqttFrame(byte header, ReadOnlySequence<byte> body)
    {
        Header = header;
        Body = body;
    }

    public byte Header { get; }

    public MqttPacketType Type => (MqttPacketType)(Header >> 4);

    public byte Flags => (byte)(Header & 0x0F);

    public ReadOnlySequence<byte> Body { get; }
}

/// <summary>
/// Splits a byte stream into MQTT packets. Only the fixed header is parsed here; the body stays a slice of the
/// pipe's buffer so that nothing is copied or allocated on the common path.
/// </summary>
internal static class MqttFrameReader
{
    /// <summary>
    /// Reads one packet from the start of <paramref name="buffer"/>. On <see cref="MqttFrameStatus.Complete"/>,
    /// <paramref name="consumed"/> is the position after the packet; otherwise <paramref name="examined"/> says
    /// how far the buffer was looked at, so that the pipe waits for more data.
    /// </summary>
    public static MqttFrameStatus TryReadFrame(in ReadOnlySequence<byte> buffer, int maxPacketSize, out MqttFrame frame, out SequencePosition consumed, out SequencePosition examined)
    {
        frame = default;
        consumed = buffer.Start;
        examined = buffer.End;

        // Fast path: the fixed header lies in the first segment (nearly always).
        var first = buffer.FirstSpan;
        Span<byte> headerBytes = stackalloc byte[5];
        int available;
        if (first.Length >= 5 || buffer.IsSingleSegment)
        {
            available = Math.Min(first.Length, 5);
            first[..available].CopyTo(headerBytes);
        }
        else
        {
            available = (int)Math.Min(buffer.Length, 5);
            buffer.Slice(0, available).CopyTo(headerBytes);
        }

        if (available < 2)
        {
            return MqttFrameStatus.Incomplete;
        }

        var remainingLength = 0;
        var multiplier = 1;
        var headerLength = 1;
        while (true)
        {
            if (headerLength >= available)
            {
                return headerLength >= 5 ? MqttFrameStatus.Malformed : MqttFrameStatus.Incomplete;
            }

            var b = headerBytes[headerLength++];
            remainingLength += (b & 0x7F) * multiplier;
            if ((b & 0x80) == 0)
            {
                break;
            }

            if (headerLength == 5)
            {
                return MqttFrameStatus.Malformed;
            }

            multiplier *= 128;
        }

        if (headerLength + (long)remainingLength > maxPacketSize)
        {
            return MqttFrameStatus.TooLarge;
        }

        var total = headerLength + remainingLength;
        if (buffer.Length < total)
        {
            return MqttFrameStatus.Incomplete;
        }

        frame = new MqttFrame(headerBytes[0], buffer.Slice(headerLength, remainingLength));
        consumed = buffer.GetPosition(total);
        examined = consumed;
        return MqttFrameStatus.Complete;
    }
}
