using System.Globalization;
using System.Text;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;

namespace Fieldline.Coap.Tests.Server;

/// <summary>Observe (RFC 7641): registration, notifications in sequence, and the ways an observation ends.</summary>
public sealed class CoapObserveTests
{
    [Fact]
    public async Task An_observer_gets_each_change_with_a_growing_sequence_and_a_reset_ends_the_observation()
    {
        var sensor = new Thermometer();
        await using var server = CoapTestServer.Start([sensor]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 1, [0xAB], "sensors/temp", options: o => o.Before.Add((CoapOptionNumber.Observe, []))));
        var registered = await client.ReceiveAsync();
        sensor.Set(22);
        var first = await client.ReceiveAsync();
        await client.SendAsync([0x60, 0x00, (byte)(first.MessageId >> 8), (byte)first.MessageId]); // ACK the Confirmable one
        sensor.Set(23);
        var second = await client.ReceiveAsync();
        await client.SendAsync([0x70, 0x00, (byte)(second.MessageId >> 8), (byte)second.MessageId]); // RST: not interested any more
        await Poll.UntilAsync(() => server.Server.ObserverCount == 0, "the observation ended by the Reset");
        sensor.Set(24);
        await client.SendAsync([0x40, 0x00, 0x33, 0x33]);
        var next = await client.ReceiveAsync();

        Assert.Equal("21.5", registered.Payload);
        Assert.Equal(CoapMessageType.Confirmable, first.Type); // the first notification checks that the client is there
        Assert.Equal(CoapMessageType.NonConfirmable, second.Type);
        Assert.Equal([0xAB], first.Token);
        Assert.Equal([0xAB], second.Token);
        Assert.Equal("22", first.Payload);
        Assert.Equal("23", second.Payload);
        Assert.True(Sequence(registered) < Sequence(first) && Sequence(first) < Sequence(second));
        Assert.Equal(0x3333, next.MessageId); // no notification of 24
    }

    [Fact]
    public async Task Observe_1_deregisters_and_a_resource_that_is_not_observable_answers_without_registering()
    {
        var sensor = new Thermometer();
        await using var server = CoapTestServer.Start([sensor, new Plain()]);
        using var client = new RawCoapClient(server.Port);

        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 1, [1], "sensors/temp", options: o => o.Before.Add((CoapOptionNumber.Observe, []))));
        await client.ReceiveAsync();
        var observing = server.Server.ObserverCount;
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 2, [1], "sensors/temp", options: o => o.Before.Add((CoapOptionNumber.Observe, [1]))));
        var deregistered = await client.ReceiveAsync();
        await client.SendAsync(RawCoapClient.Request(CoapMessageType.Confirmable, CoapCode.Get, 3, [2], "plain", options: o => o.Before.Add((CoapOptionNumber.Observe, []))));
        var plain = await client.ReceiveAsync();

        Assert.Equal(1, observing);
        Assert.Equal(0, server.Server.ObserverCount);
        Assert.Equal("21.5", deregistered.Payload);
        Assert.False(HasObserve(deregistered));
        Assert.False(HasObserve(plain));
    }

    [Fact]
    public async Task Libcoaps_client_observing_receives_the_notifications()
    {
        var sensor = new Thermometer();
        await using var server = CoapTestServer.Start([sensor]);

        var observing = CoapTestServer.RunCoapClientAsync("-m", "get", "-s", "4", "-B", "6", $"coap://127.0.0.1:{server.Port}/sensors/temp");
        await Poll.UntilAsync(() => server.Server.ObserverCount == 1, "coap-client registered as an observer");
        sensor.Set(30);
        sensor.Set(31);
        var (_, output) = await observing;

        // coap-client prints each payload as it is, with no separator: the response, then both notifications.
        Assert.Equal("21.5" + "30" + "31", output.Trim());
    }

    private static uint Sequence(RawCoapClient.Received received)
    {
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(received.Bytes, out var message));
        Assert.True(message.TryGetUInt(CoapOptionNumber.Observe, out var sequence), "a notification carries Observe");
        return sequence;
    }

    private static bool HasObserve(RawCoapClient.Received received)
    {
        Assert.Equal(CoapFormatError.None, CoapMessageView.TryParse(received.Bytes, out var message));
        return message.TryGetOption(CoapOptionNumber.Observe, out _);
    }

    private sealed class Thermometer() : CoapResource("/sensors/temp")
    {
        private double _celsius = 21.5;

        public override CoapLinkAttributes? Link { get; } = new("temperature-c", "sensor", CoapContentFormat.TextPlain, Observable: true);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public void Set(double celsius)
        {
            Volatile.Write(ref _celsius, celsius);
            NotifyObservers();
        }

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(new CoapResponse(CoapCode.Content, CoapContentFormat.TextPlain, Encoding.UTF8.GetBytes(Volatile.Read(ref _celsius).ToString(CultureInfo.InvariantCulture))));
    }

    private sealed class Plain() : CoapResource("/plain")
    {
        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CoapResponse.Text(CoapCode.Content, "plain"));
    }
}
