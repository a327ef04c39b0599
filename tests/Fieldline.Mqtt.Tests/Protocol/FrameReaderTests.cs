using System.Buffers;
using Fieldline.Mqtt.Protocol;
using Fieldline.Mqtt.Tests.Infrastructure;

namespace Fieldline.Mqtt.Tests.Protocol;

public class FrameReaderTests
{
    private static readonly byte[] PublishPacket = Bytes.Publish(4, "a/b", [1, 2, 3], qos: 1, packetId: 7);

    private static MqttFrameStatus Read(byte[] bytes, int max, out MqttFrame frame, out long consumed)
    {
        var sequence = new ReadOnlySequence<byte>(bytes);
        var status = MqttFrameReader.TryReadFrame(sequence, max, out frame, out var position, out _);
        consumed = sequence.Slice(0, position).Length;
        return status;
    }

    [Fact]
    public void A_complete_packet_is_read_with_its_header_and_body()
    {
        var bytes = Bytes.Concat(PublishPacket, [0xC0]);
        var status = Read(bytes, 1024, out var frame, out var consumed);

        Assert.Equal(MqttFrameStatus.Complete, status);
        Assert.Equal(MqttPacketType.Publish, frame.Type);
        Assert.Equal(0x02, frame.Flags);
        Assert.Equal(PublishPacket.Length, consumed);
        Assert.Equal(PublishPacket[2..], frame.Body.ToArray());
    }

    [Fact]
    public void Every_proper_prefix_of_a_packet_is_incomplete()
    {
        for (var length = 0; length < PublishPacket.Length; length++)
        {
            var status = Read(PublishPacket[..length], 1024, out _, out var consumed);
            Assert.True(status == MqttFrameStatus.Incomplete, $"prefix of {length} bytes gave {status}");
            Assert.Equal(0, consumed);
        }
    }

    [Fact]
    public void Every_prefix_of_a_packet_with_a_four_byte_remaining_length_is_incomplete()
    {
        // Remaining length 2,097,152 takes four bytes: 80 80 80 01.
        byte[] header = [0x30, 0x80, 0x80, 0x80, 0x01];
        for (var length = 0; length <= header.Length; length++)
        {
            Assert.Equal(MqttFrameStatus.Incomplete, Read(header[..length], int.MaxValue, out _, out _));
        }
    }

    [Fact]
    public void A_five_byte_remaining_length_is_malformed()
    {
        Assert.Equal(MqttFrameStatus.Malformed, Read([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00], int.MaxValue, out _, out _));
        Assert.Equal(MqttFrameStatus.Malformed, Read([0x30, 0x80, 0x80, 0x80, 0x80], int.MaxValue, out _, out _));
    }

    [Fact]
    public void A_packet_larger_than_the_maximum_packet_size_is_too_large_before_it_has_arrived()
    {
        // Header says 200 bytes follow; only the header has arrived.
        Assert.Equal(MqttFrameStatus.TooLarge, Read([0x30, 0xC8, 0x01], 100, out _, out _));
        Assert.Equal(MqttFrameStatus.Incomplete, Read([0x30, 0xC8, 0x01], 203, out _, out _));
    }

    [Fact]
    public void A_packet_exactly_at_the_maximum_packet_size_is_accepted()
    {
        Assert.Equal(MqttFrameStatus.Complete, Read(PublishPacket, PublishPacket.Length, out _, out _));
        Assert.Equal(MqttFrameStatus.TooLarge, Read(PublishPacket, PublishPacket.Length - 1, out _, out _));
    }

    [Fact]
    public void A_packet_split_over_many_segments_is_read_whole_at_every_split()
    {
        var packet = Bytes.Publish(5, "sensors/temperature", new byte[300], qos: 1, packetId: 1);
        for (var first = 1; first < packet.Length; first++)
        {
            var sequence = Segments.Create(packet[..first], packet[first..Math.Min(packet.Length, first + 2)], packet[Math.Min(packet.Length, first + 2)..], [0xC0, 0x00]);
            var status = MqttFrameReader.TryReadFrame(sequence, 1024, out var frame, out var consumed, out _);
            Assert.Equal(MqttFrameStatus.Complete, status);
            Assert.Equal(packet.Length, sequence.Slice(0, consumed).Length);
            Assert.Equal(packet[3..], frame.Body.ToArray());
        }
    }

    [Fact]
    public void A_header_split_one_byte_per_segment_is_read()
    {
        var packet = Bytes.Publish(4, "t", new byte[200]);
        var sequence = Segments.Create([.. packet.Select(b => new[] { b })]);
        Assert.Equal(MqttFrameStatus.Complete, MqttFrameReader.TryReadFrame(sequence, 1024, out var frame, out _, out _));
        Assert.Equal(packet.Length - 3, frame.Body.Length);

        var truncated = Segments.Create([.. packet[..^1].Select(b => new[] { b })]);
        Assert.Equal(MqttFrameStatus.Incomplete, MqttFrameReader.TryReadFrame(truncated, 1024, out _, out _, out _));
    }
}

/// <summary>Builds a multi-segment <see cref="ReadOnlySequence{T}"/>, as a pipe hands out when a packet spans buffers.</summary>
internal static class Segments
{
    public static ReadOnlySequence<byte> Create(params byte[][] parts)
    {
        var nonEmpty = parts.Length == 0 ? [[]] : parts;
        var first = new Segment(nonEmpty[0], 0);
        var last = first;
        for (var i = 1; i < nonEmpty.Length; i++)
        {
            last = last.Append(nonEmpty[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
