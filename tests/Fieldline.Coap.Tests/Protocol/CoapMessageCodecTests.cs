using System.Text;
using Fieldline.Coap.Protocol;

namespace Fieldline.Coap.Tests.Protocol;

public sealed class CoapMessageCodecTests
{
    // RFC 7252 Appendix A, Figure 16: a GET of /temperature, Message ID 0x7d34, no token, and its piggybacked 2.05.
    private static readonly byte[] Figure16Request = [0x40, 0x01, 0x7d, 0x34, 0xbb, .. "temperature"u8];
    private static readonly byte[] Figure16Response = [0x60, 0x45, 0x7d, 0x34, 0xff, .. "22.3 C"u8];

    // Figure 17's exchange with the token 0x20.
    private static readonly byte[] Figure17Request = [0x41, 0x01, 0x7d, 0x34, 0x20, 0xbb, .. "temperature"u8];

    [Fact]
    public void The_request_of_RFC_7252_figure_16_reads_as_a_confirmable_GET_of_temperature()
    {
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(Figure16Request, out var message));

        Assert.Equal(CoapMessageType.Confirmable, message.Type);
        Assert.Equal(CoapCode.Get, message.Code);
        Assert.Equal(0x7d34, message.MessageId);
        Assert.True(message.Token.IsEmpty);
        Assert.True(message.TryGetOption(CoapOptionNumber.UriPath, out var path));
        Assert.Equal("temperature", Encoding.UTF8.GetString(path));
        Assert.True(message.Payload.IsEmpty);
    }

    [Fact]
    public void The_writer_produces_the_bytes_of_RFC_7252_figures_16_and_17()
    {
        Span<byte> buffer = stackalloc byte[64];
        var request = new CoapMessageWriter(buffer, CoapMessageType.Confirmable, CoapCode.Get, 0x7d34, []);
        request.WriteOption(CoapOptionNumber.UriPath, "temperature");
        Assert.Equal(Figure16Request, request.Written.ToArray());

        var response = new CoapMessageWriter(buffer, CoapMessageType.Acknowledgement, CoapCode.Content, 0x7d34, []);
        response.WritePayload("22.3 C"u8);
        Assert.Equal(Figure16Response, response.Written.ToArray());

        var withToken = new CoapMessageWriter(buffer, CoapMessageType.Confirmable, CoapCode.Get, 0x7d34, [0x20]);
        withToken.WriteOption(CoapOptionNumber.UriPath, "temperature");
        Assert.Equal(Figure17Request, withToken.Written.ToArray());
    }

    [Fact]
    public void The_response_of_figure_16_carries_its_payload_after_the_marker()
    {
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(Figure16Response, out var message));

        Assert.Equal(CoapMessageType.Acknowledgement, message.Type);
        Assert.Equal("2.05", message.Code.ToString());
        Assert.Equal("22.3 C", Encoding.UTF8.GetString(message.Payload));
    }

    [Fact]
    public void Options_round_trip_with_one_and_two_byte_extensions_repeats_and_empty_values()
    {
        var longSegment = new string('s', 300);
        Span<byte> buffer = stackalloc byte[1024];
        var writer = new CoapMessageWriter(buffer, CoapMessageType.NonConfirmable, CoapCode.Post, 0xBEEF, [1, 2, 3, 4, 5, 6, 7, 8]);
        writer.WriteOption(CoapOptionNumber.Observe, 0u);
        writer.WriteOption(CoapOptionNumber.UriPath, "api");
        writer.WriteOption(CoapOptionNumber.UriPath, longSegment);
        writer.WriteOption(CoapOptionNumber.ContentFormat, 112u);
        writer.WriteOption(CoapOptionNumber.UriQuery, "rt=sensor");
        writer.WriteOption(CoapOptionNumber.Block1, new CoapBlock(70_000, true, 6).ToUInt32());
        writer.WriteOption(CoapOptionNumber.Size1, 70_000u * 1024);
        writer.WriteOption(2000, [0xAB]);
        writer.WritePayload([0xA1, 0x00]);

        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(writer.Written, out var message));
        List<(int Number, byte[] Value)> options = [];
        foreach (var option in message.GetOptions())
        {
            options.Add((option.Number, option.Value.ToArray()));
        }

        Assert.Equal([6, 11, 11, 12, 15, 27, 60, 2000], options.Select(o => o.Number));
        Assert.Empty(options[0].Value); // 0 is written as no bytes
        Assert.Equal(longSegment, Encoding.UTF8.GetString(options[2].Value));
        Assert.True(message.TryGetUInt(CoapOptionNumber.ContentFormat, out var format));
        Assert.Equal(112u, format);
        Assert.True(message.TryGetUInt(CoapOptionNumber.Block1, out var block1));
        Assert.True(CoapBlock.TryParse(block1, out var block));
        Assert.Equal(new CoapBlock(70_000, true, 6), block);
        Assert.True(message.TryGetUInt(CoapOptionNumber.Size1, out var size1));
        Assert.Equal(70_000u * 1024, size1);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], message.Token.ToArray());
        Assert.Equal([0xA1, 0x00], message.Payload.ToArray());
        Assert.False(message.TryGetOption(CoapOptionNumber.ETag, out _));
    }

    [Theory]
    [InlineData(new byte[] { 0x40, 0x01, 0x00 }, CoapFormatError.TooShort)]
    [InlineData(new byte[] { 0x80, 0x01, 0x12, 0x34 }, CoapFormatError.UnsupportedVersion)]
    [InlineData(new byte[] { 0x49, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, CoapFormatError.TokenLengthReserved)]
    [InlineData(new byte[] { 0x44, 0x01, 0x12, 0x34, 1, 2 }, CoapFormatError.Truncated)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0xB5, (byte)'a', (byte)'b' }, CoapFormatError.Truncated)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0xD1 }, CoapFormatError.Truncated)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0xE1, 0x00 }, CoapFormatError.Truncated)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0xF0 }, CoapFormatError.OptionDeltaReserved)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0x1F }, CoapFormatError.OptionLengthReserved)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0xE0, 0xFF, 0xFF, 0xE0, 0xFF, 0xFF }, CoapFormatError.OptionNumberTooLarge)]
    [InlineData(new byte[] { 0x40, 0x01, 0x12, 0x34, 0xFF }, CoapFormatError.EmptyPayloadAfterMarker)]
    [InlineData(new byte[] { 0x40, 0x00, 0x12, 0x34, 0x00 }, CoapFormatError.EmptyMessageNotEmpty)]
    [InlineData(new byte[] { 0x41, 0x00, 0x12, 0x34, 0x07 }, CoapFormatError.EmptyMessageNotEmpty)]
    public void A_malformed_datagram_is_named_and_its_header_is_still_read_when_present(byte[] datagram, CoapFormatError expected)
    {
        var error = CoapMessageView.TryParse(datagram, out var message);

        Assert.Equal(expected, error);
        Assert.Equal(datagram.Length >= 4, message.HasHeader);
        if (message.HasHeader)
        {
            // Enough to answer a Confirmable message with a Reset (RFC 7252 §4.2).
            Assert.Equal(0x1234, message.MessageId);
        }
    }

    [Fact]
    public void An_empty_message_and_a_ping_are_well_formed()
    {
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse([0x40, 0x00, 0xAB, 0xCD], out var ping));
        Assert.True(ping.Code.IsEmpty);
        Assert.Equal(CoapMessageType.Confirmable, ping.Type);
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse([0x70, 0x00, 0xAB, 0xCD], out var reset));
        Assert.Equal(CoapMessageType.Reset, reset.Type);
    }

    [Fact]
    public void A_uint_option_longer_than_four_bytes_is_not_read_as_a_number()
    {
        byte[] datagram = [0x40, 0x01, 0x00, 0x01, 0xC5, 1, 2, 3, 4, 5];

        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(datagram, out var message));
        Assert.True(message.TryGetOption(CoapOptionNumber.ContentFormat, out var raw));
        Assert.Equal(5, raw.Length);
        Assert.False(message.TryGetUInt(CoapOptionNumber.ContentFormat, out _));
    }

    [Fact]
    public void Thousands_of_mutated_messages_never_throw_and_whatever_parses_writes_back_to_the_same_bytes()
    {
        var random = new Random(7252);
        byte[][] seeds =
        [
            Figure16Request,
            Figure16Response,
            Figure17Request,
            [0x52, 0x02, 0x00, 0x09, 0xAA, 0xBB, 0x60, 0xB3, (byte)'a', (byte)'p', (byte)'i', 0x11, 0x70, 0xD1, 0x02, 0x16, 0xFF, 1, 2, 3],
        ];
        var parsed = 0;
        Span<byte> buffer = stackalloc byte[2048];
        for (var i = 0; i < 50_000; i++)
        {
            var datagram = Mutate(seeds[i % seeds.Length], random);
            if (CoapMessageView.TryParse(datagram, out var message) != CoapFormatError.None)
            {
                continue;
            }

            parsed++;
            var writer = new CoapMessageWriter(buffer, message.Type, message.Code, message.MessageId, message.Token);
            foreach (var option in message.GetOptions())
            {
                writer.WriteOption(option.Number, option.Value);
            }

            writer.WritePayload(message.Payload);
            Assert.True(writer.Written.SequenceEqual(datagram), $"re-encoding changed {Convert.ToHexString(datagram)} into {Convert.ToHexString(writer.Written)}");
        }

        Assert.InRange(parsed, 1_000, 49_000); // both paths were exercised
    }

    [Fact]
    public void Block_values_and_sizes_follow_RFC_7959()
    {
        Assert.True(CoapBlock.TryParse(0x16, out var block));
        Assert.Equal(new CoapBlock(1, false, 6), block);
        Assert.Equal(1024, block.Size);
        Assert.Equal(1024, block.Offset);
        Assert.False(CoapBlock.TryParse(0x0F, out _)); // SZX 7 is reserved
        Assert.Equal(2, CoapBlock.ExponentFor(64));
        Assert.Equal(2, CoapBlock.ExponentFor(100));
        Assert.Equal(6, CoapBlock.ExponentFor(4096));
        Assert.Equal(0, CoapBlock.ExponentFor(10));
        Assert.Equal(0x1Eu, new CoapBlock(1, true, 6).ToUInt32());
    }

    [Fact]
    public void Codes_read_as_class_and_detail()
    {
        Assert.Equal("4.04", CoapCode.NotFound.ToString());
        Assert.Equal(0x84, CoapCode.NotFound.Value);
        Assert.True(CoapCode.Post.IsRequest);
        Assert.True(CoapCode.Continue.IsResponse);
        Assert.Equal(31, CoapCode.Continue.Detail);
        Assert.False(CoapCode.Empty.IsRequest);
        Assert.True(CoapOptionNumber.IsCritical(CoapOptionNumber.UriPath));
        Assert.False(CoapOptionNumber.IsCritical(CoapOptionNumber.ContentFormat));
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var bytes = new List<byte>(seed);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits; e++)
        {
            switch (random.Next(4))
            {
                case 0 when bytes.Count > 0:
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                    break;
                case 1 when bytes.Count > 0:
                    bytes.RemoveAt(random.Next(bytes.Count));
                    break;
                case 2:
                    bytes.Insert(random.Next(bytes.Count + 1), (byte)random.Next(256));
                    break;
                default:
                    var keep = random.Next(bytes.Count + 1);
                    bytes.RemoveRange(keep, bytes.Count - keep);
                    break;
            }
        }

        return [.. bytes];
    }
}
