using System.Text;
using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>The broker with a real third-party client, MQTTnet, on both protocol versions.</summary>
public class MqttNetTests
{
    public static TheoryData<MqttNetVersion> Versions => [MqttNetVersion.V311, MqttNetVersion.V500];

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Messages_reach_wildcard_subscribers_and_only_them(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var plus = await MqttNetClient.ConnectAsync(broker.Port, "plus", version);
        await using var hash = await MqttNetClient.ConnectAsync(broker.Port, "hash", version);
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", version);
        await plus.SubscribeAsync("site/+/temp", 0);
        await hash.SubscribeAsync("site/#", 0);

        await publisher.PublishAsync("site/a/temp", "1");
        await publisher.PublishAsync("site/a/humidity", "2");
        await publisher.PublishAsync("other/a/temp", "3");
        await publisher.PublishAsync("site", "4");

        await hash.WaitForAsync(3, "site/a/temp, site/a/humidity and site on site/#");
        await plus.WaitForAsync(1, "site/a/temp on site/+/temp");
        Assert.Equal(["site/a/temp:1", "site/a/humidity:2", "site:4"], hash.Messages.Select(m => $"{m.Topic}:{m.Payload}"));
        Assert.Equal(["site/a/temp:1"], plus.Messages.Select(m => $"{m.Topic}:{m.Payload}"));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task QoS_1_messages_are_acknowledged_and_delivered_at_QoS_1(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "sub", version);
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", version);
        await subscriber.SubscribeAsync("q/#", 1);

        for (var i = 0; i < 100; i++)
        {
            var result = await publisher.PublishAsync($"q/{i}", $"m{i}", qos: 1);
            Assert.True(result.IsSuccess, $"PUBACK {i}: {result.ReasonCode}");
        }

        await subscriber.WaitForAsync(100, "100 QoS 1 messages");
        Assert.All(subscriber.Messages, m => Assert.Equal(1, m.Qos));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"m{i}"), subscriber.Messages.Select(m => m.Payload));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Retained_message_reaches_a_late_subscriber_and_an_empty_payload_clears_it(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", version);
        await publisher.PublishAsync("state/door", "open", qos: 1, retain: true);
        await publisher.PublishAsync("state/door", "closed", qos: 1, retain: true);

        await using (var late = await MqttNetClient.ConnectAsync(broker.Port, "late", version))
        {
            await late.SubscribeAsync("state/#", 1);
            await late.WaitForAsync(1, "the retained state/door");
            var message = Assert.Single(late.Messages);
            Assert.Equal(("state/door", "closed", true), (message.Topic, message.Payload, message.Retain));
        }

        await publisher.PublishAsync("state/door", "", qos: 1, retain: true);
        Assert.Equal(0, broker.Broker.RetainedCount);

        await using var later = await MqttNetClient.ConnectAsync(broker.Port, "later", version);
        await later.SubscribeAsync("state/#", 1);
        await later.PublishAsync("state/marker", "m");
        await later.WaitForAsync(1, "the marker published after subscribing");
        Assert.Equal(["state/marker"], later.Messages.Select(m => m.Topic));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task The_will_is_not_published_after_a_clean_DISCONNECT(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", version);
        await watcher.SubscribeAsync("wills/#", 1);

        var leaving = await MqttNetClient.ConnectAsync(broker.Port, "leaving", version, b => b.WithWillTopic("wills/leaving").WithWillPayload("gone"));
        await leaving.DisposeAsync();
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 1, "the leaving client to be disconnected", () => broker.Broker.ConnectedClients);

        await watcher.PublishAsync("wills/marker", "m", qos: 1);
        await watcher.WaitForAsync(1, "the marker");
        Assert.Equal(["wills/marker"], watcher.Messages.Select(m => m.Topic));
    }

    [Fact]
    public async Task The_will_is_published_when_the_connection_is_lost()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", MqttNetVersion.V500);
        await watcher.SubscribeAsync("wills/#", 1);

        var raw = await RawMqttClient.ConnectAsync(broker.Port);
        await raw.SendAsync(Bytes.Connect(4, "dying", willTopic: "wills/dying", willPayload: Encoding.UTF8.GetBytes("gone")));
        Assert.Equal(2, (await raw.ReadPacketAsync())!.Type);
        raw.Abort();

        await watcher.WaitForAsync(1, "the will of the aborted client");
        Assert.Equal(["wills/dying:gone"], watcher.Messages.Select(m => $"{m.Topic}:{m.Payload}"));
    }

    [Fact]
    public async Task Keep_alive_timeout_disconnects_a_silent_client_with_reason_0x8D()
    {
        var time = new FakeTimeProvider();
        await using var broker = await TestBroker.StartAsync(timeProvider: time);
        await using var client = await MqttNetClient.ConnectAsync(broker.Port, "sleepy", MqttNetVersion.V500, b => b.WithKeepAlivePeriod(TimeSpan.FromSeconds(60)));

        time.Advance(TimeSpan.FromSeconds(91));
        var disconnected = await Poll.WithTimeout(client.Disconnected.Task, "the keep-alive disconnect");
        Assert.Equal(MqttClientDisconnectReason.KeepAliveTimeout, disconnected.Reason);
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "no client connected", () => broker.Broker.ConnectedClients);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task A_second_connection_with_the_same_client_id_takes_over_the_session(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var first = await MqttNetClient.ConnectAsync(broker.Port, "device-1", version);
        await using var second = await MqttNetClient.ConnectAsync(broker.Port, "device-1", version);

        var disconnected = await Poll.WithTimeout(first.Disconnected.Task, "the first connection to be closed");
        if (version == MqttNetVersion.V500)
        {
            Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, disconnected.Reason);
        }

        Assert.True(second.Client.IsConnected);
        await second.SubscribeAsync("x", 0);
        await second.PublishAsync("x", "still here");
        await second.WaitForAsync(1, "own message on the new connection");
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task A_persistent_session_receives_QoS_1_messages_published_while_it_was_offline(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        void Persistent(MqttClientOptionsBuilder b)
        {
            b.WithCleanSession(false);
            if (version == MqttNetVersion.V500)
            {
                b.WithSessionExpiryInterval(3600);
            }
        }

        await using (var offline = await MqttNetClient.ConnectAsync(broker.Port, "persistent", version, Persistent))
        {
            await offline.SubscribeAsync("jobs/#", 1);
        }

        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "the persistent client to be offline", () => broker.Broker.ConnectedClients);
        Assert.Equal(1, broker.Broker.SessionCount);

        await using (var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", version))
        {
            for (var i = 0; i < 5; i++)
            {
                await publisher.PublishAsync($"jobs/{i}", $"job{i}", qos: 1);
            }

            await publisher.PublishAsync("jobs/qos0", "qos0", qos: 0);
        }

        // QoS 0 messages are queued for an offline persistent session too (the first to go when its queue is full).
        await using var back = await MqttNetClient.ConnectAsync(broker.Port, "persistent", version, Persistent);
        await back.WaitForAsync(6, "the five QoS 1 jobs and the QoS 0 message queued while offline");
        Assert.Equal(["job0", "job1", "job2", "job3", "job4", "qos0"], back.Messages.Select(m => m.Payload));
    }

    [Fact]
    public async Task A_clean_session_forgets_subscriptions_of_the_previous_connection()
    {
        await using var broker = await TestBroker.StartAsync();
        await using (var first = await MqttNetClient.ConnectAsync(broker.Port, "c", MqttNetVersion.V311))
        {
            await first.SubscribeAsync("t", 1);
        }

        await Poll.UntilAsync(() => broker.Broker.SessionCount == 0, "the clean session to be removed", () => broker.Broker.SessionCount);
        Assert.Equal(0, broker.Broker.SubscriptionCount);
    }

    [Fact]
    public async Task OnSubscribed_sees_the_granted_filters_after_the_subscription_is_live()
    {
        var seen = new List<string>();
        TestBroker? started = null;
        var policy = new TestPolicy
        {
            Authorize = filter => filter == "denied/x" ? MqttSubscribeAuthorization.Denied : MqttSubscribeAuthorization.Granted,
            Subscribed = (client, filters) =>
            {
                lock (seen)
                {
                    seen.AddRange(filters);
                }

                // Published by the server from the hook: it must reach the subscription that was just granted.
                started!.Broker.Publish(new MqttApplicationMessage("hello/" + client.ClientId, "welcome"u8.ToArray(), qualityOfService: 1));
            },
        };
        await using var broker = started = await TestBroker.StartAsync(policy: policy);
        var received = new List<string>();
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (received)
            {
                received.Add($"{e.ApplicationMessage.Topic}={e.ApplicationMessage.ConvertPayloadToString()}");
            }

            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.Port).WithClientId("greeted").WithProtocolVersion(MqttNetVersion.V500).Build());

        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("hello/+", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).WithTopicFilter("denied/x").Build());
        await Poll.UntilAsync(() => { lock (received) { return received.Count > 0; } }, "the message published from OnSubscribed", () => "nothing received");

        Assert.Equal(["hello/+"], seen);
        Assert.Equal(["hello/greeted=welcome"], received);
    }

    [Fact]
    public async Task Fifty_thousand_QoS_0_messages_from_four_publishers_all_reach_one_wildcard_subscriber()
    {
        const int perPublisher = 12_500;
        await using var broker = await TestBroker.StartAsync();
        var count = 0;
        var perTopic = new int[4];
        var outOfOrder = 0;
        var subscriber = new MqttClientFactory().CreateMqttClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            var topic = e.ApplicationMessage.Topic;
            var index = topic[^1] - '0';
            var sequence = int.Parse(e.ApplicationMessage.ConvertPayloadToString()!, System.Globalization.CultureInfo.InvariantCulture);
            if (sequence != perTopic[index])
            {
                outOfOrder++;
            }

            perTopic[index] = sequence + 1;
            Interlocked.Increment(ref count);
            return Task.CompletedTask;
        };
        await subscriber.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.Port).WithClientId("sink").WithProtocolVersion(MqttNetVersion.V500).Build());
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("load/#").Build());

        var publishers = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => MqttNetClient.ConnectAsync(broker.Port, $"load-{i}", MqttNetVersion.V311)));
        await Task.WhenAll(publishers.Select(async (p, i) =>
        {
            var payloads = Enumerable.Range(0, perPublisher).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            foreach (var payload in payloads)
            {
                await p.PublishAsync($"load/p{i}", payload);
            }
        }));

        await Poll.UntilAsync(() => Volatile.Read(ref count) >= 4 * perPublisher, "all 50,000 messages", () => $"{Volatile.Read(ref count)} received", TimeSpan.FromSeconds(60));
        Assert.Equal(4 * perPublisher, count);
        Assert.Equal(0, outOfOrder);
        foreach (var p in publishers)
        {
            await p.DisposeAsync();
        }

        await subscriber.DisconnectAsync();
        subscriber.Dispose();
    }
}
