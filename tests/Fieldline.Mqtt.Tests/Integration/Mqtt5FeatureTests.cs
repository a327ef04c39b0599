using System.Text;
using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>MQTT 5.0 features end to end, with MQTTnet's client where it can express them and raw packets where it cannot.</summary>
public sealed class Mqtt5FeatureTests
{
    private const MqttNetVersion V5 = MqttNetVersion.V500;

    [Theory]
    [InlineData(MqttNetVersion.V311)]
    [InlineData(MqttNetVersion.V500)]
    public async Task QoS_2_messages_reach_a_QoS_2_subscriber_exactly_once_at_QoS_2(MqttNetVersion version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "sub", version);
        await subscriber.SubscribeAsync("q2/#", 2);
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", version);
        for (var i = 0; i < 20; i++)
        {
            var result = await publisher.PublishAsync($"q2/{i}", $"m{i}", qos: 2);
            Assert.True(result.IsSuccess, $"publish {i}: {result.ReasonCode}");
        }

        await subscriber.WaitForAsync(20, "twenty QoS 2 messages");
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"m{i}"), subscriber.Messages.Select(m => m.Payload));
        Assert.All(subscriber.Messages, m => Assert.Equal(2, m.Qos));
    }

    [Fact]
    public async Task A_QoS_2_delivery_not_completed_is_resent_on_resume_with_DUP_or_as_PUBREL()
    {
        await using var broker = await TestBroker.StartAsync();
        var properties = Props([0x11, .. U32(600)]);
        await using (var first = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "q2sub", cleanStart: false, properties))
        {
            await first.SendAsync(Subscribe(5, 1, "t/#", 2));
            Assert.Equal(9, (await first.ReadPacketAsync())!.Type);
            await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5);
            await publisher.PublishAsync("t/a", "a", qos: 2);
            await publisher.PublishAsync("t/b", "b", qos: 2);

            // Receive both; acknowledge only the first with PUBREC, then drop the connection.
            var a = (await first.ReadPacketAsync())!;
            var b = (await first.ReadPacketAsync())!;
            Assert.Equal(0x34, a.Header);
            Assert.Equal(0x34, b.Header);
            await first.SendAsync([0x50, 0x02, a.Body[5], a.Body[6]]);
            var pubrel = (await first.ReadPacketAsync())!;
            Assert.Equal(0x62, pubrel.Header);
            first.Abort();
        }

        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "the subscriber to be offline");
        await using var back = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "q2sub", cleanStart: false, properties);

        // Resent in the original order: first the PUBREL of the message already received, then b with DUP.
        var resentRel = (await back.ReadPacketAsync())!;
        Assert.Equal(0x62, resentRel.Header);
        var resentB = (await back.ReadPacketAsync())!;
        Assert.Equal(0x3C, resentB.Header);
        Assert.Equal("b", Encoding.UTF8.GetString(resentB.Body[^1..]));
    }

    [Fact]
    public async Task Topic_aliases_set_by_the_client_are_resolved_and_an_unknown_alias_is_refused()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "sub", V5);
        await subscriber.SubscribeAsync("alias/#", 0);
        await using var raw = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "aliaser");
        await raw.SendAsync(Packet(0x30, Str("alias/long/topic"), Props([0x23, .. U16(3)]), [1]));
        await raw.SendAsync(Packet(0x30, Str(""), Props([0x23, .. U16(3)]), [2]));
        await subscriber.WaitForAsync(2, "both messages, the second sent by alias alone");
        Assert.All(subscriber.Messages, m => Assert.Equal("alias/long/topic", m.Topic));

        await raw.SendAsync(Packet(0x30, Str(""), Props([0x23, .. U16(4)]), [3]));
        var packets = await raw.ReadUntilClosedAsync();
        Assert.Equal(0xE0, Assert.Single(packets).Header);
        Assert.Equal(0x82, packets[0].Body[0]);
    }

    [Fact]
    public async Task The_broker_uses_topic_aliases_towards_a_client_that_accepts_them()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "aliased", properties: Props([0x22, .. U16(5)]));
        await subscriber.SendAsync(Subscribe(5, 1, "a/#", 0));
        Assert.Equal(9, (await subscriber.ReadPacketAsync())!.Type);
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5);
        await publisher.PublishAsync("a/b/c", "1");
        await publisher.PublishAsync("a/b/c", "2");

        // First: topic and alias 1; second: empty topic and alias 1.
        var first = (await subscriber.ReadPacketAsync())!;
        Assert.Equal(Hex([.. Str("a/b/c"), .. Props([0x23, .. U16(1)]), (byte)'1']), Hex(first.Body));
        var second = (await subscriber.ReadPacketAsync())!;
        Assert.Equal(Hex([.. Str(""), .. Props([0x23, .. U16(1)]), (byte)'2']), Hex(second.Body));
    }

    [Fact]
    public async Task An_expired_message_never_reaches_a_subscriber_and_the_remaining_interval_is_sent()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await TestBroker.StartAsync(timeProvider: time);
        void Persistent(MqttClientOptionsBuilder b) => b.WithCleanStart(false).WithSessionExpiryInterval(3600);
        await using (var offline = await MqttNetClient.ConnectAsync(broker.Port, "late", V5, Persistent))
        {
            await offline.SubscribeAsync("exp/#", 1);
        }

        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "the subscriber to be offline");
        await using (var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5))
        {
            await publisher.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("exp/short").WithPayload("short").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(10).Build());
            await publisher.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("exp/long").WithPayload("long").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(100).Build());
        }

        time.Advance(TimeSpan.FromSeconds(30));
        await using var back = await MqttNetClient.ConnectAsync(broker.Port, "late", V5, Persistent);
        await back.WaitForAsync(1, "the message that has not expired");
        var received = Assert.Single(back.Full);
        Assert.Equal("exp/long", received.Topic);
        Assert.Equal(70u, received.MessageExpiryInterval);
    }

    [Fact]
    public async Task Subscription_identifiers_user_properties_and_request_response_properties_reach_the_subscriber()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "sub", V5);
        await subscriber.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("req/#").WithSubscriptionIdentifier(7).Build());
        await subscriber.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("req/+/x").WithSubscriptionIdentifier(9).Build());
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5);
        await publisher.Client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("req/a/x")
            .WithPayload("{}")
            .WithContentType("application/json")
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData)
            .WithResponseTopic("resp/a")
            .WithCorrelationData([1, 2, 3])
            .WithUserProperty("trace", Encoding.UTF8.GetBytes("abc"))
            .Build());

        await subscriber.WaitForAsync(1, "the request");
        var message = Assert.Single(subscriber.Full);
        Assert.Equal([7u, 9u], message.SubscriptionIdentifiers.Order());
        Assert.Equal("application/json", message.ContentType);
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, message.PayloadFormatIndicator);
        Assert.Equal("resp/a", message.ResponseTopic);
        Assert.Equal([1, 2, 3], message.CorrelationData);
        var property = Assert.Single(message.UserProperties);
        Assert.Equal(("trace", "abc"), (property.Name, Encoding.UTF8.GetString(property.ValueBuffer.ToArray())));
    }

    [Fact]
    public async Task A_payload_that_is_not_the_UTF_8_it_claims_is_refused_with_0x99()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5);
        var result = await publisher.Client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("t").WithPayload(new byte[] { 0xC3, 0x28 }).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData).Build());
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, result.ReasonCode);
    }

    [Fact]
    public async Task No_local_retain_as_published_and_retain_handling_are_honoured()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5);
        await publisher.PublishAsync("r/kept", "retained", qos: 1, retain: true);

        await using var client = await MqttNetClient.ConnectAsync(broker.Port, "c", V5);
        await client.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic("r/#").WithNoLocal(true).WithRetainAsPublished(true).WithRetainHandling(MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly)).Build());
        await client.WaitForAsync(1, "the retained message on a new subscription");

        // Subscribing again with handling 1 sends nothing; handling 2 never sends retained messages.
        await client.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic("r/#").WithNoLocal(true).WithRetainAsPublished(true).WithRetainHandling(MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly)).Build());
        await client.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic("r/+").WithRetainHandling(MqttRetainHandling.DoNotSendOnSubscribe)).Build());

        await client.PublishAsync("r/own", "own", qos: 1);               // No Local on r/#, but r/+ matches: one copy
        await publisher.PublishAsync("r/live", "live", qos: 1, retain: true); // Retain As Published on r/# keeps the flag
        await client.WaitForAsync(3, "the retained message, the own message through r/+, and the live one");

        // A marker from the client's own connection is routed after its own message: once it is in, a second copy
        // of "own" would have arrived before it.
        await client.PublishAsync("r/marker", "marker", qos: 1);
        await client.WaitForAsync(4, "the marker");
        Assert.Equal(["retained:True", "own:False", "live:True", "marker:False"], client.Messages.Select(m => $"{m.Payload}:{m.Retain}"));
    }

    [Fact]
    public async Task A_will_waits_for_its_delay_and_is_not_sent_when_the_client_returns_in_time()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await TestBroker.StartAsync(timeProvider: time);
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", V5);
        await watcher.SubscribeAsync("wills/#", 0);

        var connectProperties = Props([0x11, .. U32(300)]);
        var willProperties = Props([0x18, .. U32(10)]);
        byte[] Connect() => Packet(0x10, ConnectBody(5, "dying", cleanStart: false, properties: connectProperties, willTopic: "wills/dying", willPayload: "gone"u8.ToArray(), willProperties: willProperties));

        // Returns within the delay: no will.
        var first = await RawMqttClient.ConnectAsync(broker.Port);
        await first.SendAsync(Connect());
        Assert.Equal(2, (await first.ReadPacketAsync())!.Type);
        first.Abort();
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 1, "the dying client to be gone");
        time.Advance(TimeSpan.FromSeconds(5));
        await using (var back = await RawMqttClient.ConnectAsync(broker.Port))
        {
            await back.SendAsync(Connect());
            Assert.Equal(2, (await back.ReadPacketAsync())!.Type);
            time.Advance(TimeSpan.FromSeconds(20));
            back.Abort();
        }

        // Gone for good: the will goes out when the delay has passed, not before.
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 1, "the dying client to be gone again");
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Empty(watcher.Messages);
        time.Advance(TimeSpan.FromSeconds(2));
        await watcher.WaitForAsync(1, "the will after its delay");
        Assert.Equal("gone", Assert.Single(watcher.Messages).Payload);
    }

    [Fact]
    public async Task Enhanced_authentication_runs_a_challenge_through_AUTH_before_CONNACK()
    {
        var policy = new TestPolicy
        {
            Exchange = (method, data) => (method, Encoding.UTF8.GetString(data.Span)) switch
            {
                ("TEST-CHALLENGE", "hello") => MqttAuthenticationStep.Continue("nonce"u8.ToArray()),
                ("TEST-CHALLENGE", "nonce-signed") => MqttAuthenticationStep.Succeed(),
                _ => MqttAuthenticationStep.Fail(MqttReasonCode.NotAuthorized),
            },
        };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);
        await client.SendAsync(Packet(0x10, ConnectBody(5, "enhanced", properties: Props([0x15, .. Str("TEST-CHALLENGE")], [0x16, .. Bin("hello"u8.ToArray())]))));
        var auth = (await client.ReadPacketAsync())!;
        Assert.Equal(0xF0, auth.Header);
        Assert.Equal(0x18, auth.Body[0]);
        Assert.Contains("nonce", Encoding.UTF8.GetString(auth.Body), StringComparison.Ordinal);
        await client.SendAsync(Packet(0xF0, [0x18], Props([0x15, .. Str("TEST-CHALLENGE")], [0x16, .. Bin("nonce-signed"u8.ToArray())])));
        var connack = (await client.ReadPacketAsync())!;
        Assert.Equal(0x20, connack.Header);
        Assert.Equal(0x00, connack.Body[1]);

        await using var unknown = await RawMqttClient.ConnectAsync(broker.Port);
        await unknown.SendAsync(Packet(0x10, ConnectBody(5, "other", properties: Props([0x15, .. Str("SCRAM-SHA-1")]))));
        var refused = (await unknown.ReadPacketAsync())!;
        Assert.Equal(0x87, refused.Body[1]);
    }

    [Fact]
    public async Task A_full_queue_drops_QoS_0_first_and_then_refuses_QoS_1_with_0x97()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumQueuedMessagesPerSession = 3);
        void Persistent(MqttClientOptionsBuilder b) => b.WithCleanStart(false).WithSessionExpiryInterval(3600);
        await using (var offline = await MqttNetClient.ConnectAsync(broker.Port, "slow", V5, Persistent))
        {
            await offline.SubscribeAsync("q/#", 1);
        }

        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "the subscriber to be offline");
        await using (var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5))
        {
            await publisher.PublishAsync("q/0a", "0a", qos: 0);
            await publisher.PublishAsync("q/0b", "0b", qos: 0);
            foreach (var name in new[] { "1a", "1b", "1c" })
            {
                Assert.Equal(MqttClientPublishReasonCode.Success, (await publisher.PublishAsync($"q/{name}", name, qos: 1)).ReasonCode);
            }

            Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, (await publisher.PublishAsync("q/1d", "1d", qos: 1)).ReasonCode);
        }

        await using var back = await MqttNetClient.ConnectAsync(broker.Port, "slow", V5, Persistent);
        await back.WaitForAsync(3, "the three QoS 1 messages, the QoS 0 ones having made room");
        Assert.Equal(["1a", "1b", "1c"], back.Messages.Select(m => m.Payload));
    }

    [Fact]
    public async Task A_retained_message_beyond_the_limit_is_not_retained_and_a_5_0_publisher_hears_0x97()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumRetainedMessages = 2);
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", V5);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await publisher.PublishAsync("r/1", "1", qos: 1, retain: true)).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await publisher.PublishAsync("r/2", "2", qos: 1, retain: true)).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, (await publisher.PublishAsync("r/3", "3", qos: 1, retain: true)).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await publisher.PublishAsync("r/1", "1 again", qos: 1, retain: true)).ReasonCode);
        Assert.Equal(2, broker.Broker.RetainedCount);
    }

    [Fact]
    public async Task Unreleased_QoS_2_messages_beyond_the_receive_maximum_end_the_connection_with_0x93()
    {
        await using var broker = await TestBroker.StartAsync(o => o.ReceiveMaximum = 3);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "greedy");
        for (ushort id = 1; id <= 3; id++)
        {
            await client.SendAsync(Publish(5, "t", [1], qos: 2, packetId: id));
            Assert.Equal(0x50, (await client.ReadPacketAsync())!.Header);
        }

        await client.SendAsync(Publish(5, "t", [1], qos: 2, packetId: 4));
        var packets = await client.ReadUntilClosedAsync();
        Assert.Equal(0x93, Assert.Single(packets).Body[0]);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task A_connection_taken_over_publishes_its_will(int level)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", V5);
        await watcher.SubscribeAsync("wills/#", 0);

        await using var first = await RawMqttClient.ConnectAsync(broker.Port);
        await first.SendAsync(Packet(0x10, ConnectBody(level, "twin", willTopic: "wills/twin", willPayload: "replaced"u8.ToArray())));
        Assert.Equal(2, (await first.ReadPacketAsync())!.Type);

        await using var second = await RawMqttClient.ConnectMqttAsync(broker.Port, level, "twin");
        await watcher.WaitForAsync(1, "the will of the connection that was taken over");
        Assert.Equal("replaced", Assert.Single(watcher.Messages).Payload);
    }
}
