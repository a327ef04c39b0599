using System.Net;
using System.Net.Sockets;
using Fieldline.Mqtt.Tests.Infrastructure;
using Xunit.Abstractions;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>Allocation is counted for the whole process, so these tests run alone, after all others.</summary>
[CollectionDefinition(nameof(AllocationTests), DisableParallelization = true)]
public sealed class AllocationTestsCollection;

/// <summary>The QoS 0 routing path allocates nothing per message: parse in place, match in the tree, write into the subscriber's pipe.</summary>
[Collection(nameof(AllocationTests))]
public sealed class AllocationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Routing_QoS_0_messages_allocates_nothing_per_message()
    {
        await using var broker = await TestBroker.StartAsync();
        using var subscriber = await ConnectAsync(broker.Port, Concat(Connect(4, "sub"), Subscribe(4, 1, "bench/#", 0)), 4 + 5);
        using var publisher = await ConnectAsync(broker.Port, Connect(4, "pub"), 4);
        var packet = Publish(4, "bench/line-1/temperature", new byte[100]);

        const int messages = 20_000;
        var burst = Burst(packet, messages);

        // Warm up with the same burst: the first one grows the transport's buffer pools and JITs the path.
        await RouteAsync(publisher, subscriber, burst);
        await RouteAsync(publisher, subscriber, burst);

        // The count is process-wide, so work left over from other tests (hosts still shutting down) can add to one
        // burst; it never subtracts. The least of three bursts is the routing's own cost.
        var allocated = long.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var before = GC.GetTotalAllocatedBytes(precise: true);
            await RouteAsync(publisher, subscriber, burst);
            allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
        }

        // What remains (timers, the thread pool, the test's own awaits) is per read or flush, not per message; the
        // smallest object is 24 bytes, so one per message would show above 20.
        var perMessage = (double)allocated / messages;
        output.WriteLine($"{allocated} bytes allocated in the process while routing {messages} QoS 0 messages ({perMessage:F2} B/message)");
        Assert.True(perMessage < 20, $"Expected no allocation per routed QoS 0 message, saw {allocated} bytes for {messages} messages ({perMessage:F1} B/message).");
    }

    private static async Task<Socket> ConnectAsync(int port, byte[] handshake, int responseLength)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        await socket.SendAsync(handshake);
        var response = new byte[responseLength];
        var read = 0;
        while (read < responseLength)
        {
            var n = await socket.ReceiveAsync(response.AsMemory(read));
            Assert.True(n > 0, "The broker closed the connection during the handshake.");
            read += n;
        }

        return socket;
    }

    private static byte[] Burst(byte[] packet, int count)
    {
        var burst = new byte[packet.Length * count];
        for (var i = 0; i < count; i++)
        {
            packet.CopyTo(burst, i * packet.Length);
        }

        return burst;
    }

    private static async Task RouteAsync(Socket publisher, Socket subscriber, byte[] burst)
    {
        // A QoS 0 PUBLISH from a 3.1.1 client reaches a 3.1.1 subscriber byte for byte as it was sent.
        var send = publisher.SendAsync(burst);
        var buffer = new byte[64 * 1024];
        long received = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (received < burst.Length)
        {
            var n = await subscriber.ReceiveAsync(buffer, timeout.Token);
            Assert.True(n > 0, $"The subscriber's connection closed after {received} of {burst.Length} bytes.");
            received += n;
        }

        await send;
        Assert.Equal(burst.Length, received);
    }
}
