using System.Net;
using System.Text;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Coap.Tests.Server;

public sealed class CoapServerTests
{
    [Fact]
    public async Task Libcoaps_client_gets_a_resource_and_4_04_for_an_unknown_path()
    {
        await using var server = CoapTestServer.Start([new HelloResource()]);

        var hello = await CoapTestServer.RunCoapClientAsync("-m", "get", "-B", "10", $"coap://127.0.0.1:{server.Port}/hello");
        var missing = await CoapTestServer.RunCoapClientAsync("-m", "get", "-B", "10", $"coap://127.0.0.1:{server.Port}/nowhere");
        var ipv6 = CoapTestServer.Ipv6LoopbackIfSupported;
        var overIpv6 = await CoapTestServer.RunCoapClientAsync("-m", "get", "-B", "10", $"coap://{(ipv6.Equals(IPAddress.IPv6Loopback) ? "[::1]" : "127.0.0.1")}:{server.Port}/hello");

        Assert.Equal("world", hello.Output.Trim());
        Assert.Contains("4.04", missing.Output, StringComparison.Ordinal);
        Assert.Equal("world", overIpv6.Output.Trim());
        Assert.Empty(server.Logger.Errors);
    }

    [Fact]
    public async Task A_retransmitted_confirmable_request_is_answered_twice_but_handled_once()
    {
        var counter = new CountingResource();
        await using var server = CoapTestServer.Start([counter]);
        using var client = new RawCoapClient(server.Port);
        var request = RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, 0x1234, [0xCA, 0xFE], "count", "x"u8.ToArray());

        await client.SendAsync(request);
        var first = await client.ReceiveAsync();
        await client.SendAsync(request);
        var second = await client.ReceiveAsync();

        Assert.Equal(CoapMessageType.Acknowledgement, first.Type);
        Assert.Equal(CoapCode.Changed, first.Code);
        Assert.Equal(0x1234, first.MessageId);
        Assert.Equal([0xCA, 0xFE], first.Token);
        Assert.Equal("1", first.Payload);
        Assert.Equal(first.Bytes, second.Bytes);
        Assert.Equal(1, counter.Count);
    }

    [Fact]
    public async Task Exchanges_are_forgotten_after_exchange_lifetime_and_the_oldest_beyond_the_maximum()
    {
        var counter = new CountingResource();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = CoapTestServer.Start([counter], o => o.MaximumExchanges = 2, time);
        using var client = new RawCoapClient(server.Port);
        byte[] Post(ushort id) => RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, id, [1], "count", "x"u8.ToArray());

        async Task<string> ExchangeAsync(ushort id)
        {
            await client.SendAsync(Post(id));
            return (await client.ReceiveAsync()).Payload;
        }

        var answers = new List<string> { await ExchangeAsync(1), await ExchangeAsync(2), await ExchangeAsync(3) };
        answers.Add(await ExchangeAsync(3)); // remembered: the same answer
        answers.Add(await ExchangeAsync(1)); // the oldest beyond 2 exchanges was forgotten: handled again
        time.Advance(TimeSpan.FromSeconds(248));
        answers.Add(await ExchangeAsync(4)); // past EXCHANGE_LIFETIME the others are forgotten
        answers.Add(await ExchangeAsync(1));

        Assert.Equal(["1", "2", "3", "3", "4", "5", "6"], answers);
    }

    [Fact]
    public async Task A_malformed_confirmable_message_gets_a_reset_and_a_malformed_non_confirmable_one_nothing()
    {
        await using var server = CoapTestServer.Start([new HelloResource()]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync([0x59, 0x01, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // NON with token length 9
        await client.SendAsync([0x49, 0x01, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // CON with token length 9
        var reset = await client.ReceiveAsync();
        await client.SendAsync([0x40, 0x00, 0x00, 0x09]); // a CoAP ping
        var pong = await client.ReceiveAsync();

        Assert.Equal(CoapMessageType.Reset, reset.Type);
        Assert.Equal(0x0008, reset.MessageId); // the NON got nothing: the first answer is the CON's
        Assert.True(reset.Code.IsEmpty);
        Assert.Equal(CoapMessageType.Reset, pong.Type);
        Assert.Equal(0x0009, pong.MessageId);
    }

    [Fact]
    public async Task A_method_the_resource_does_not_serve_gets_4_05_naming_the_allowed_ones_and_an_unknown_critical_option_4_02()
    {
        await using var server = CoapTestServer.Start([new HelloResource()]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Delete, 1, [], "hello"));
        var notAllowed = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 2, [], "hello", options: o => o.After.Add((2001, [1]))));
        var badOption = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 3, [], "hello", options: o => o.After.Add((2000, [1]))));
        var electiveIgnored = await client.ReceiveAsync();

        Assert.Equal("4.05", notAllowed.Code.ToString());
        Assert.Equal("Allowed: GET", notAllowed.Payload);
        Assert.Equal("4.02", badOption.Code.ToString());
        Assert.Equal("world", electiveIgnored.Payload);
    }

    [Fact]
    public async Task A_slow_resource_is_acknowledged_empty_first_and_answered_separately_with_the_token()
    {
        var slow = new SlowResource();
        await using var server = CoapTestServer.Start([slow], o => o.SeparateResponseDelay = TimeSpan.FromMilliseconds(50));
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 0x4242, [7, 7], "slow"));
        var ack = await client.ReceiveAsync();
        slow.Release.SetResult();
        var response = await client.ReceiveAsync();

        Assert.Equal(CoapMessageType.Acknowledgement, ack.Type);
        Assert.True(ack.Code.IsEmpty);
        Assert.Equal(0x4242, ack.MessageId);
        Assert.Equal(CoapMessageType.Confirmable, response.Type);
        Assert.NotEqual(0x4242, response.MessageId);
        Assert.Equal([7, 7], response.Token);
        Assert.Equal("done", response.Payload);
    }

    [Fact]
    public async Task A_separate_response_is_sent_again_at_doubling_timeouts_and_given_up_after_four_retransmissions()
    {
        var time = new FakeTimeProvider();
        var slow = new SlowResource();
        await using var server = CoapTestServer.Start([slow], o => o.AckRandomFactor = 1.0, time);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 0x0101, [9], "slow"));
        await AdvanceUntilDatagramAsync(time, client, TimeSpan.FromMilliseconds(250)); // the separate-response delay (1 s) passes
        var ack = await client.ReceiveAsync();
        slow.Release.SetResult();
        var response = await client.ReceiveAsync();
        List<RawCoapClient.Received> retransmissions = [];
        foreach (var seconds in new[] { 2, 4, 8, 16 })
        {
            time.Advance(TimeSpan.FromSeconds(seconds));
            retransmissions.Add(await client.ReceiveAsync());
        }

        time.Advance(TimeSpan.FromSeconds(32)); // given up: nothing more comes; the next datagram answers a ping
        await client.SendAsync([0x40, 0x00, 0x77, 0x77]);
        var next = await client.ReceiveAsync();

        Assert.True(ack.Code.IsEmpty);
        Assert.Equal(CoapMessageType.Confirmable, response.Type);
        Assert.All(retransmissions, r => Assert.Equal(response.Bytes, r.Bytes));
        Assert.Equal(0x7777, next.MessageId);
        Assert.Equal(CoapMessageType.Reset, next.Type);
    }

    [Fact]
    public async Task An_acknowledged_separate_response_is_not_sent_again()
    {
        var time = new FakeTimeProvider();
        var slow = new SlowResource();
        await using var server = CoapTestServer.Start([slow], o => o.AckRandomFactor = 1.0, time);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 0x0202, [8], "slow"));
        await AdvanceUntilDatagramAsync(time, client, TimeSpan.FromMilliseconds(250));
        await client.ReceiveAsync();
        slow.Release.SetResult();
        var response = await client.ReceiveAsync();
        await client.SendAsync([0x60, 0x00, (byte)(response.MessageId >> 8), (byte)response.MessageId]); // its ACK
        await client.SendAsync([0x40, 0x00, 0x55, 0x55]); // a ping after the ACK: its Reset shows the ACK was read
        var pong = await client.ReceiveAsync();
        time.Advance(TimeSpan.FromSeconds(60));
        await client.SendAsync([0x40, 0x00, 0x66, 0x66]);
        var next = await client.ReceiveAsync();

        Assert.Equal(0x5555, pong.MessageId);
        Assert.Equal(0x6666, next.MessageId); // no retransmission came in between
    }

    /// <summary>Advances fake time in steps until the server sends something (its timer may not exist yet at first).</summary>
    private static async Task AdvanceUntilDatagramAsync(FakeTimeProvider time, RawCoapClient client, TimeSpan step)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!client.HasDatagram)
        {
            Assert.True(DateTime.UtcNow < deadline, "the server sent nothing while fake time advanced");
            time.Advance(step);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task A_resource_that_throws_answers_5_00_and_the_server_keeps_serving()
    {
        await using var server = CoapTestServer.Start([new HelloResource(), new ThrowingResource()]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.NonConfirmable, CoapCode.Get, 1, [1], "boom"));
        var failed = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.NonConfirmable, CoapCode.Get, 2, [2], "hello"));
        var after = await client.ReceiveAsync();

        Assert.Equal("5.00", failed.Code.ToString());
        Assert.Equal(CoapMessageType.NonConfirmable, failed.Type);
        Assert.Equal([1], failed.Token);
        Assert.Equal("world", after.Payload);
        Assert.Contains(server.Logger.Errors, e => e.Contains("/boom", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_request_larger_than_the_maximum_message_size_gets_4_13()
    {
        await using var server = CoapTestServer.Start([new CountingResource()], o => o.MaximumMessageSize = 256);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, 5, [], "count", new byte[600]));
        var tooLarge = await client.ReceiveAsync();

        Assert.Equal("4.13", tooLarge.Code.ToString());
        Assert.Equal(5, tooLarge.MessageId);
    }

    [Fact]
    public async Task Path_placeholders_match_one_segment_and_the_query_is_read()
    {
        await using var server = CoapTestServer.Start([new EchoTokenResource()]);
        using var client = new RawCoapClient(server.Port, CoapTestServer.Ipv6LoopbackIfSupported);

        await client.SendAsync(RawCoapClient.Request(
            CoapMessageType.Confirmable, CoapCode.Get, 9, [], "api/v1/abc123/echo", options: o => o.After.Add((CoapOptionNumber.UriQuery, "rt=sensor"u8.ToArray()))));
        var echoed = await client.ReceiveAsync();

        Assert.Equal("abc123 sensor", echoed.Payload);
    }

    [Fact]
    public async Task Well_known_core_lists_the_resources_in_link_format_and_filters_by_rt()
    {
        await using var server = CoapTestServer.Start([new HelloResource(), new TemperatureResource(), new EchoTokenResource()]);

        var all = await CoapTestServer.RunCoapClientAsync("-m", "get", "-B", "10", $"coap://127.0.0.1:{server.Port}/.well-known/core");
        var filtered = await CoapTestServer.RunCoapClientAsync("-m", "get", "-B", "10", $"coap://127.0.0.1:{server.Port}/.well-known/core?rt=temp*");
        using var client = new RawCoapClient(server.Port);
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 1, [], ".well-known/core"));
        var raw = await client.ReceiveAsync();

        Assert.Equal("""</hello>,</sensors/temp>;rt="temperature-c";if="sensor";ct=50;obs""", all.Output.Trim());
        Assert.Equal("""</sensors/temp>;rt="temperature-c";if="sensor";ct=50;obs""", filtered.Output.Trim());
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(raw.Bytes, out var message));
        Assert.True(message.TryGetUInt(CoapOptionNumber.ContentFormat, out var format));
        Assert.Equal((uint)CoapContentFormat.LinkFormat, format);
    }

    private sealed class TemperatureResource() : CoapResource("/sensors/temp")
    {
        public override CoapLinkAttributes? Link { get; } = new("temperature-c", "sensor", CoapContentFormat.Json, Observable: true);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(new CoapResponse(CoapCode.Content, CoapContentFormat.Json, "{\"value\":21.5}"u8.ToArray()));
    }

    [Fact]
    public async Task Blocks_of_one_representation_share_an_etag_and_a_response_too_large_for_a_message_becomes_5_00()
    {
        await using var server = CoapTestServer.Start([new LargeResource(), new SecretThrowingResource(), new HugeErrorResource()]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 1, [], "large"));
        var first = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 2, [], "large", options: o => o.After.Add((CoapOptionNumber.Block2, [0x1E]))));
        var second = await client.ReceiveAsync(); // block 1 of 1,024 bytes
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 3, [], "api/v1/secret-token-123/boom"));
        var failed = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 4, [], "huge"));
        var huge = await client.ReceiveAsync();

        Assert.Equal(ETag(first), ETag(second));
        Assert.Equal(8, ETag(first).Length);
        Assert.Equal("5.00", failed.Code.ToString());
        Assert.Contains(server.Logger.Errors, e => e.Contains("/api/v1/{token}/boom", StringComparison.Ordinal));
        Assert.DoesNotContain(server.Logger.Errors, e => e.Contains("secret-token-123", StringComparison.Ordinal)); // logs name the template, never the path
        Assert.Equal("5.00", huge.Code.ToString());
        Assert.Equal("The response is too large.", huge.Payload);
    }

    [Fact]
    public async Task A_large_resource_arrives_intact_in_the_blocks_the_client_asks_for()
    {
        await using var server = CoapTestServer.Start([new LargeResource()]);
        using var client = new RawCoapClient(server.Port);

        var in64 = await CoapTestServer.RunCoapClientAsync("-m", "get", "-b", "64", "-B", "10", $"coap://127.0.0.1:{server.Port}/large");
        var unasked = await CoapTestServer.RunCoapClientAsync("-m", "get", "-B", "10", $"coap://127.0.0.1:{server.Port}/large");
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 1, [], "large"));
        var first = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 2, [], "large", options: o => o.After.Add((CoapOptionNumber.Block2, [0x52]))));
        var fifth64 = await client.ReceiveAsync(); // block 5 of 64 bytes
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 3, [], "large", options: o => o.After.Add((CoapOptionNumber.Block2, [0x46]))));
        var pastTheEnd = await client.ReceiveAsync(); // block 4 of 1,024 bytes starts at 4,096

        // coap-client ends its output with a new line of its own.
        Assert.Equal(LargeResource.Body, in64.Output[..^1]);
        Assert.Equal(LargeResource.Body, unasked.Output[..^1]);
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(first.Bytes, out var message));
        Assert.True(message.TryGetUInt(CoapOptionNumber.Block2, out var block2));
        Assert.True(CoapBlock.TryParse(block2, out var block));
        Assert.Equal(new CoapBlock(0, true, 6), block);
        Assert.True(message.TryGetUInt(CoapOptionNumber.Size2, out var size2));
        Assert.Equal((uint)LargeResource.Body.Length, size2);
        Assert.Equal(LargeResource.Body[..1024], first.Payload);
        Assert.Equal(LargeResource.Body.Substring(5 * 64, 64), fifth64.Payload);
        Assert.Equal("4.02", pastTheEnd.Code.ToString());
    }

    private sealed class LargeResource() : CoapResource("/large")
    {
        public static readonly string Body = string.Concat(Enumerable.Range(0, 300).Select(i => $"line {i:D4}\n"));

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.Content, Body));
    }

    [Fact]
    public async Task A_large_request_body_sent_in_Block1_blocks_reaches_the_resource_whole_and_out_of_order_blocks_get_4_08()
    {
        var upload = new UploadResource();
        await using var server = CoapTestServer.Start([upload], o => o.MaximumBodySize = 4096);
        var body = Path.Combine(Path.GetTempPath(), $"coap-body-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(body, LargeResource.Body);
        try
        {
            var posted = await CoapTestServer.RunCoapClientAsync("-m", "post", "-b", "64", "-f", body, "-B", "10", $"coap://127.0.0.1:{server.Port}/upload");
            Assert.Equal($"received {LargeResource.Body.Length} bytes", posted.Output.Trim());
            Assert.Equal(LargeResource.Body, upload.Last);
        }
        finally
        {
            File.Delete(body);
        }

        using var client = new RawCoapClient(server.Port);
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, 1, [1], "upload", new byte[64], o => o.After.Add((CoapOptionNumber.Block1, [0x0A]))));
        var cont = await client.ReceiveAsync(); // block 0, more, 64 bytes
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, 2, [1], "upload", new byte[64], o => o.After.Add((CoapOptionNumber.Block1, [0x2A]))));
        var skipped = await client.ReceiveAsync(); // block 2: block 1 is missing
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, 3, [1], "upload", new byte[1024], o => o.After.Add((CoapOptionNumber.Block1, [0x0E]))));
        for (var n = 1; n <= 4; n++)
        {
            await client.ReceiveAsync();
            await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Post, (ushort)(3 + n), [1], "upload", new byte[1024], o => o.After.Add((CoapOptionNumber.Block1, [(byte)((n << 4) | 0x0E)]))));
        }

        var tooLarge = await client.ReceiveAsync(); // the fifth KiB passes MaximumBodySize

        Assert.Equal("2.31", cont.Code.ToString());
        Assert.Equal("4.08", skipped.Code.ToString());
        Assert.Equal("4.13", tooLarge.Code.ToString());
    }

    private sealed class UploadResource() : CoapResource("/upload")
    {
        public string? Last { get; private set; }

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Post];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
        {
            Last = Encoding.UTF8.GetString(request.Payload);
            return ValueTask.FromResult(CoapResponse.Text(CoapCode.Changed, $"received {request.Payload.Length} bytes"));
        }
    }

    private sealed class HelloResource() : CoapResource("/hello")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.Content, "world"));
    }

    private sealed class CountingResource() : CoapResource("/count")
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Post];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.Changed, Interlocked.Increment(ref _count).ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    private sealed class SlowResource() : CoapResource("/slow")
    {
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override async ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
        {
            await Release.Task.WaitAsync(cancellationToken);
            return CoapResponse.Text(CoapCode.Content, "done");
        }
    }

    private static byte[] ETag(RawCoapClient.Received received)
    {
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(received.Bytes, out var message));
        Assert.True(message.TryGetOption(CoapOptionNumber.ETag, out var etag), "a block carries an ETag");
        return etag.ToArray();
    }

    private sealed class SecretThrowingResource() : CoapResource("/api/v1/{token}/boom")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the resource failed on purpose");
    }

    private sealed class HugeErrorResource() : CoapResource("/huge")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.BadRequest, new string('x', 2000))); // errors are not sent in blocks
    }

    private sealed class ThrowingResource() : CoapResource("/boom")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the resource failed on purpose");
    }

    private sealed class EchoTokenResource() : CoapResource("/api/v1/{token}/echo")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(new CoapResponse(CoapCode.Content, CoapContentFormat.TextPlain, Encoding.UTF8.GetBytes($"{request.Path[2]} {request.QueryValue("rt")}")));
    }
}
