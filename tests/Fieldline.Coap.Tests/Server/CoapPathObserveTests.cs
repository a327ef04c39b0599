using System.Collections.Concurrent;
using System.Text;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;

namespace Fieldline.Coap.Tests.Server;

/// <summary>
/// What a resource serving many paths (one per device) needs of Observe: notifying the observers of one path only,
/// hooks when observations start and end with the state kept on the request, Confirmable notifications whose
/// acknowledgement is reported, and 4.15 for a payload it does not take.
/// </summary>
public sealed class CoapPathObserveTests
{
    [Fact]
    public async Task A_change_of_one_path_notifies_its_observers_only()
    {
        var things = new Things();
        await using var server = CoapTestServer.Start([things]);
        using var a = new RawCoapClient(server.Port);
        using var b = new RawCoapClient(server.Port);

        await a.SendAsync(Observe(1, [0xA], "things/a"));
        await b.SendAsync(Observe(1, [0xB], "things/b"));
        var registeredA = await a.ReceiveAsync();
        var registeredB = await b.ReceiveAsync();
        things.Set("a", "a1");
        var notifiedA = await a.ReceiveAsync();
        await a.SendAsync([0x60, 0x00, (byte)(notifiedA.MessageId >> 8), (byte)notifiedA.MessageId]);
        await b.SendAsync([0x40, 0x00, 0x44, 0x44]); // a ping: its Reset comes back before anything queued after it
        var pingAnswer = await b.ReceiveAsync();

        Assert.Equal("a0", registeredA.Payload);
        Assert.Equal("b0", registeredB.Payload);
        Assert.Equal("a1", notifiedA.Payload);
        Assert.Equal(CoapMessageType.Reset, pingAnswer.Type);
        Assert.Equal(0x4444, pingAnswer.MessageId); // b got no notification of a's change
        Assert.Equal(1, things.Handled["b"]);
    }

    [Fact]
    public async Task Observations_start_and_end_with_the_state_the_resource_kept_on_the_request()
    {
        var things = new Things();
        await using var server = CoapTestServer.Start([things]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(Observe(1, [1], "things/x"));
        await client.ReceiveAsync();
        var started = things.Started.ToArray();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 2, [1], "things/x", options: o => o.Before.Add((CoapOptionNumber.Observe, [1]))));
        await client.ReceiveAsync();

        Assert.Equal(["state of x"], started);
        Assert.Equal(["state of x"], things.Ended.ToArray());
    }

    [Fact]
    public async Task Confirmable_notifications_report_delivery_when_acknowledged()
    {
        var things = new Things();
        await using var server = CoapTestServer.Start([things]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(Observe(1, [1], "things/c"));
        var registered = await client.ReceiveAsync();
        var deliveredOnAck = things.Delivered.Count;
        things.Set("c", "c1");
        var first = await client.ReceiveAsync();
        await client.SendAsync([0x60, 0x00, (byte)(first.MessageId >> 8), (byte)first.MessageId]);
        await Poll.UntilAsync(() => things.Delivered.Count == deliveredOnAck + 1, "the acknowledged notification reported delivered");
        things.Set("c", "c2");
        var second = await client.ReceiveAsync();

        Assert.Equal(1, deliveredOnAck); // the registration's answer went piggybacked
        Assert.Equal(CoapMessageType.Acknowledgement, registered.Type);
        Assert.Equal(CoapMessageType.Confirmable, first.Type);
        Assert.Equal(CoapMessageType.Confirmable, second.Type); // every one, not only the first of the day
        Assert.Equal(["c0", "c1"], things.Delivered.ToArray());
    }

    [Fact]
    public async Task Beyond_the_maximum_observers_of_a_path_a_new_registration_ends_the_oldest()
    {
        var things = new Things { MaximumObservers = 1 };
        await using var server = CoapTestServer.Start([things]);
        using var old = new RawCoapClient(server.Port);
        using var restarted = new RawCoapClient(server.Port);

        await old.SendAsync(Observe(1, [1], "things/m"));
        await old.ReceiveAsync();
        await restarted.SendAsync(Observe(1, [2], "things/m")); // the same device from a new port
        await restarted.ReceiveAsync();
        await Poll.UntilAsync(() => things.Ended.Count == 1, "the old observation ended");
        things.Set("m", "m1");
        var notified = await restarted.ReceiveAsync();
        await restarted.SendAsync([0x60, 0x00, (byte)(notified.MessageId >> 8), (byte)notified.MessageId]);
        await old.SendAsync([0x40, 0x00, 0x55, 0x55]);
        var oldNext = await old.ReceiveAsync();

        Assert.Equal(1, server.Server.ObserverCount);
        Assert.Equal("m1", notified.Payload);
        Assert.Equal(0x5555, oldNext.MessageId); // the Reset of its ping: no notification came to the old one
    }

    [Fact]
    public async Task A_payload_in_a_content_format_the_resource_does_not_take_gets_4_15()
    {
        await using var server = CoapTestServer.Start([new Things()]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Put, 1, [1], "things/d", payload: "x"u8.ToArray(), options: o => o.After.Add((CoapOptionNumber.ContentFormat, [CoapContentFormat.Json]))));
        var refused = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Put, 2, [1], "things/d", payload: "x"u8.ToArray(), options: o => o.After.Add((CoapOptionNumber.ContentFormat, []))));
        var accepted = await client.ReceiveAsync();

        Assert.Equal(CoapCode.UnsupportedContentFormat, refused.Code);
        Assert.Contains("use one of 0", refused.Payload, StringComparison.Ordinal);
        Assert.Equal(CoapCode.Changed, accepted.Code);
    }

    private static byte[] Observe(ushort messageId, byte[] token, string path) =>
        RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, messageId, token, path, options: o => o.Before.Add((CoapOptionNumber.Observe, [])));

    /// <summary>One value per id at <c>/things/{id}</c>, observable, every notification Confirmable.</summary>
    private sealed class Things() : CoapResource("/things/{id}")
    {
        private readonly ConcurrentDictionary<string, string> _values = new();

        public ConcurrentDictionary<string, int> Handled { get; } = new();

        public ConcurrentQueue<string> Started { get; } = new();

        public ConcurrentQueue<string> Ended { get; } = new();

        public ConcurrentQueue<string> Delivered { get; } = new();

        public override CoapLinkAttributes? Link { get; } = new(Observable: true);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get, CoapCode.Put];

        public override IReadOnlyList<int>? AcceptedContentFormats { get; } = [CoapContentFormat.TextPlain];

        public override bool ConfirmableNotifications => true;

        public int MaximumObservers { get; init; } = int.MaxValue;

        public override int MaximumObserversPerPath => MaximumObservers;

        public void Set(string id, string value)
        {
            _values[id] = value;
            NotifyObservers("things/" + id);
        }

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
        {
            var id = request.Path[1];
            if (request.Method == CoapCode.Put)
            {
                return ValueTask.FromResult(new CoapResponse(CoapCode.Changed));
            }

            Handled.AddOrUpdate(id, 1, (_, n) => n + 1);
            request.State = "state of " + id;
            var value = _values.GetOrAdd(id, id + "0");
            return ValueTask.FromResult(new CoapResponse(CoapCode.Content, CoapContentFormat.TextPlain, Encoding.UTF8.GetBytes(value))
            {
                Delivered = () => Delivered.Enqueue(value),
            });
        }

        protected override void OnObserveStarted(CoapRequest request) => Started.Enqueue((string)request.State!);

        protected override void OnObserveEnded(CoapRequest request) => Ended.Enqueue((string)request.State!);
    }
}
