using System.Net;
using System.Net.Sockets;
using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Tests.Infrastructure;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>A client that sends its last messages and closes (as mosquitto_pub -l does) loses none of them.</summary>
public sealed class CompletedInputTests
{
    [Fact]
    public async Task Messages_sent_just_before_the_client_closes_are_all_routed_even_while_the_broker_waits_downstream()
    {
        var stored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var policy = new TestPolicy { Publish = (_, in _) => MqttPublishDecision.AcceptWhen(stored.Task) };
        await using var broker = await TestBroker.StartAsync(o => o.ReceiveMaximum = 2, policy);
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "sub");
        await subscriber.SendAsync(Subscribe(4, 1, "t", 0));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);

        // Ten QoS 0 messages and a FIN in one go: the receive window (2) is full after two of them, so the
        // broker waits for the store while the rest of the input, already complete, sits in its buffer.
        using var publisher = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await publisher.ConnectAsync(IPAddress.Loopback, broker.Port);
        var messages = Enumerable.Range(0, 10).Select(i => Publish(4, "t", [(byte)i])).ToArray();
        await publisher.SendAsync(Concat([Connect(4, "pub"), .. messages]));
        publisher.Shutdown(SocketShutdown.Send);
        await Poll.UntilAsync(() => broker.Broker.MessagesReceived >= 2, "the first two messages handled");

        stored.SetResult();

        var payloads = new List<byte>();
        for (var i = 0; i < messages.Length; i++)
        {
            var packet = await subscriber.ReadPacketAsync();
            Assert.True(packet is { Type: 3 }, $"expected PUBLISH {i} of {messages.Length}, got {packet?.ToString() ?? "end of stream"}");
            payloads.Add(packet!.Body[^1]);
        }

        Assert.Equal(Enumerable.Range(0, 10).Select(i => (byte)i), payloads);
    }
}
