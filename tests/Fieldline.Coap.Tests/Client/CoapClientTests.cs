using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Fieldline.Coap.Client;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Fieldline.Coap.Tests.Server;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Coap.Tests.Client;

public sealed class CoapClientTests
{
    [Fact]
    public async Task The_client_gets_piggybacked_and_separate_responses_and_posts_with_a_query()
    {
        var slow = new Slow();
        await using var server = CoapTestServer.Start([new Echo(), slow], o => o.SeparateResponseDelay = TimeSpan.FromMilliseconds(50));
        await using var client = new CoapClient(new IPEndPoint(IPAddress.Loopback, server.Port));

        var echoed = await client.SendAsync(CoapCode.Post, "/echo?unit=C", "21.5"u8.ToArray(), CoapContentFormat.TextPlain);
        var separate = client.SendAsync(CoapCode.Get, "/slow");
        await Poll.UntilAsync(() => slow.Started, "the slow resource running");
        slow.Release.SetResult();
        var late = await separate;
        var missing = await client.SendAsync(CoapCode.Get, "/nowhere", confirmable: false);

        Assert.Equal(CoapCode.Changed, echoed.Code);
        Assert.Equal("21.5 C", Encoding.UTF8.GetString(echoed.Payload));
        Assert.Equal(CoapContentFormat.TextPlain, echoed.ContentFormat);
        Assert.Equal("done", Encoding.UTF8.GetString(late.Payload));
        Assert.Equal(CoapCode.NotFound, missing.Code);
    }

    [Fact]
    public async Task The_client_observes_a_resource_and_cancels_the_observation_when_it_stops_reading()
    {
        var counter = new Counter();
        await using var server = CoapTestServer.Start([counter]);
        await using var client = new CoapClient(new IPEndPoint(IPAddress.Loopback, server.Port));

        List<string> seen = [];
        await foreach (var notification in client.ObserveAsync("/counter"))
        {
            seen.Add(Encoding.UTF8.GetString(notification.Payload));
            if (seen.Count == 3)
            {
                break;
            }

            counter.Increment();
        }

        await Poll.UntilAsync(() => server.Server.ObserverCount == 0, "the observation cancelled with Observe 1");
        Assert.Equal(["0", "1", "2"], seen);
    }

    [Fact]
    public async Task A_request_the_server_does_not_acknowledge_is_sent_again_and_then_given_up()
    {
        var time = new FakeTimeProvider();
        using var silent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)silent.Client.LocalEndPoint!).Port;
        await using var client = new CoapClient(new IPEndPoint(IPAddress.Loopback, port), new CoapClientOptions { AckRandomFactor = 1.0 }, time);

        var request = client.SendAsync(CoapCode.Get, "/hello");
        var first = await ReceiveAsync(silent);
        List<byte[]> again = [];
        foreach (var seconds in new[] { 2, 4, 8, 16 })
        {
            time.Advance(TimeSpan.FromSeconds(seconds));
            again.Add(await ReceiveAsync(silent));
        }

        time.Advance(TimeSpan.FromSeconds(32));

        await Assert.ThrowsAsync<TimeoutException>(() => request);
        Assert.All(again, datagram => Assert.Equal(first, datagram));
    }

    private static async Task<byte[]> ReceiveAsync(UdpClient udp)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return (await udp.ReceiveAsync(timeout.Token)).Buffer;
    }

    private sealed class Echo() : CoapResource("/echo")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Post];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.Changed, $"{Encoding.UTF8.GetString(request.Payload)} {request.QueryValue("unit")}"));
    }

    private sealed class Slow() : CoapResource("/slow")
    {
        private int _started;

        public bool Started => Volatile.Read(ref _started) == 1;

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override async ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
        {
            Volatile.Write(ref _started, 1);
            await Release.Task.WaitAsync(cancellationToken);
            return CoapResponse.Text(CoapCode.Content, "done");
        }
    }

    private sealed class Counter() : CoapResource("/counter")
    {
        private int _value;

        public override CoapLinkAttributes? Link { get; } = new(Observable: true);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public void Increment()
        {
            Interlocked.Increment(ref _value);
            NotifyObservers();
        }

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.Content, Volatile.Read(ref _value).ToString(CultureInfo.InvariantCulture)));
    }
}
