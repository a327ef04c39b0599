using System.Net;
using System.Net.Sockets;
using System.Text;
using Fieldline.Mqtt.Tests.Infrastructure;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>A QoS 1 subscriber slower than its publisher slows the publisher down; nothing is dropped.</summary>
public sealed class SlowQos1SubscriberTests
{
    [Fact]
    public async Task A_burst_far_larger_than_the_session_queue_reaches_a_QoS_1_subscriber_whole_and_in_order()
    {
        // Tiny limits: 2 in flight, publishers held back at 4 queued, and a queue that would drop beyond 8.
        await using var broker = await TestBroker.StartAsync(o =>
        {
            o.MaximumInflightPerClient = 2;
            o.QueueHighWaterMark = 4;
            o.MaximumQueuedMessagesPerSession = 8;
        });
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "slow-sub", MqttNetVersion.V500);
        await subscriber.SubscribeAsync("t", qos: 1);

        const int messages = 300;
        using var publisher = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await publisher.ConnectAsync(IPAddress.Loopback, broker.Port);
        var burst = Concat([Connect(4, "fast-pub"), .. Enumerable.Range(1, messages).Select(i => Publish(4, "t", Encoding.ASCII.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), qos: 1, packetId: (ushort)i))]);
        await publisher.SendAsync(burst);

        await subscriber.WaitForAsync(messages, $"{messages} messages at the subscriber");
        Assert.Equal(Enumerable.Range(1, messages).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), subscriber.Messages.Select(m => m.Payload));
    }
}
