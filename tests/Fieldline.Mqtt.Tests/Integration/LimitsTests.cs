using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>Each configured limit refuses with its reason code (5.0) or return code (3.1.1) and moves its counter.</summary>
public class LimitsTests
{
    public static TheoryData<int> Levels => [4, 5];

    [Fact]
    public async Task A_connection_to_a_full_broker_is_closed_before_CONNACK_and_room_returns_when_a_client_leaves()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumConnections = 2);
        using var counters = new BrokerCounters(broker.Broker);
        var first = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "first");
        await using var second = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "second");

        await using (var third = await RawMqttClient.ConnectAsync(broker.Port))
        {
            await TrySendAsync(third, Connect(5, "third"));
            Assert.Empty(await third.ReadUntilClosedAsync());
        }

        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.Connections));
        await first.SendAsync([0xE0, 0x00]);
        Assert.Empty(await first.ReadUntilClosedAsync());
        await first.DisposeAsync();
        await Poll.UntilAsync(() => broker.Broker.Admission.Admitted == 1, "one admitted connection left", () => broker.Broker.Admission.Admitted);
        await using var fourth = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "fourth");
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public async Task A_connection_accepted_before_the_broker_filled_up_is_refused_as_server_busy(int level)
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumConnections = 1);
        using var counters = new BrokerCounters(broker.Broker);
        await using var early = await RawMqttClient.ConnectAsync(broker.Port);
        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 1, "the early socket accepted", () => broker.Broker.ConnectedClients);
        await using var first = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "first");

        await early.SendAsync(Connect(level, "early"));
        var connack = await early.ReadPacketAsync();

        Assert.Equal(2, connack!.Type);
        Assert.Equal(level == 5 ? 0x89 : 0x03, connack.Body[1]);
        Assert.Empty(await early.ReadUntilClosedAsync());
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.Connections));
        Assert.Equal(1, counters.Get("fieldline.mqtt.connect_refused", "reason", "server_busy"));
    }

    [Fact]
    public async Task Connections_beyond_the_limit_per_address_are_refused_with_quota_exceeded()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumConnectionsPerAddress = 2);
        using var counters = new BrokerCounters(broker.Broker);
        var first = await MqttNetClient.ConnectAsync(broker.Port, "first", MqttNetVersion.V500);
        await using var second = await MqttNetClient.ConnectAsync(broker.Port, "second", MqttNetVersion.V311);

        Assert.Equal(MqttClientConnectResultCode.QuotaExceeded, await RefusalOfMqttNetAsync(broker.Port, "third", MqttNetVersion.V500));
        await using (var raw = await RawMqttClient.ConnectAsync(broker.Port))
        {
            await raw.SendAsync(Connect(4, "third-311"));
            Assert.Equal(0x03, (await raw.ReadPacketAsync())!.Body[1]);
        }

        Assert.Equal(2, counters.LimitsReached(MqttLimitNames.ConnectionsPerAddress));
        await first.DisposeAsync();
        await Poll.UntilAsync(() => broker.Broker.Admission.Admitted == 1, "one admitted connection left", () => broker.Broker.Admission.Admitted);
        await using var again = await MqttNetClient.ConnectAsync(broker.Port, "again", MqttNetVersion.V500);
        Assert.True(again.Client.IsConnected);
    }

    [Fact]
    public async Task CONNECTs_faster_than_the_rate_are_refused_until_the_bucket_refills()
    {
        var time = new FakeTimeProvider();
        await using var broker = await TestBroker.StartAsync(o => (o.MaximumConnectRate, o.ConnectRateBurst) = (1, 2), timeProvider: time);
        using var counters = new BrokerCounters(broker.Broker);
        await using var first = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "first");
        await using var second = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "second");

        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, await RefusalOfMqttNetAsync(broker.Port, "third", MqttNetVersion.V500));
        await using (var raw = await RawMqttClient.ConnectAsync(broker.Port))
        {
            await raw.SendAsync(Connect(4, "third-311"));
            Assert.Equal(0x03, (await raw.ReadPacketAsync())!.Body[1]);
        }

        Assert.Equal(2, counters.LimitsReached(MqttLimitNames.ConnectRate));
        time.Advance(TimeSpan.FromSeconds(1));
        await using var afterRefill = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "after-refill");
    }

    [Fact]
    public async Task Subscriptions_beyond_the_limit_get_quota_exceeded_and_replacing_one_still_works()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumSubscriptionsPerClient = 2);
        using var counters = new BrokerCounters(broker.Broker);
        await using var client = await MqttNetClient.ConnectAsync(broker.Port, "c", MqttNetVersion.V500);

        var result = await client.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("a").WithTopicFilter("b").WithTopicFilter("c").Build());
        var again = await client.Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("a", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build());

        Assert.Equal(
            [MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.QuotaExceeded],
            result.Items.Select(i => i.ResultCode).ToArray());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, again.Items.Single().ResultCode);
        Assert.Equal(2, broker.Broker.SubscriptionCount);
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.SubscriptionsPerClient));

        await using var v311 = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "v311");
        await v311.SendAsync(Packet(0x82, U16(7), Str("x"), [0], Str("y"), [1], Str("z"), [1]));
        var suback = await v311.ReadPacketAsync();
        Assert.Equal("00070001" + "80", Hex(suback!.Body));
    }

    [Fact]
    public async Task A_5_0_QoS_1_publish_to_a_too_long_or_too_deep_topic_gets_PUBACK_0x90_and_is_not_routed()
    {
        await using var broker = await TestBroker.StartAsync(o => (o.MaximumTopicLength, o.MaximumTopicLevels) = (20, 3));
        using var counters = new BrokerCounters(broker.Broker);
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "sub", MqttNetVersion.V500);
        await subscriber.SubscribeAsync("#");
        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "pub");

        await publisher.SendAsync(Publish(5, "a/b/c/d", [1], qos: 1, packetId: 1));
        await publisher.SendAsync(Publish(5, new string('t', 21), [1], qos: 1, packetId: 2));
        await publisher.SendAsync(Publish(5, "a/b/c", [1], qos: 1, packetId: 3));

        Assert.Equal("0001" + "90", Hex((await publisher.ReadPacketAsync())!.Body));
        Assert.Equal("0002" + "90", Hex((await publisher.ReadPacketAsync())!.Body));
        var accepted = (await publisher.ReadPacketAsync())!.Body;
        Assert.True(Hex(accepted) is "0003" or "000300", $"expected PUBACK 3 with success, got {Hex(accepted)}");
        await subscriber.WaitForAsync(1, "the message within the limits");
        Assert.Equal(["a/b/c"], subscriber.Messages.Select(m => m.Topic));
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.TopicLevels));
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.TopicLength));
    }

    [Fact]
    public async Task A_5_0_QoS_0_publish_to_a_too_deep_topic_ends_the_connection_with_DISCONNECT_0x90()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumTopicLevels = 3);
        using var counters = new BrokerCounters(broker.Broker);
        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "pub");

        await publisher.SendAsync(Publish(5, "a/b/c/d", [1]));

        var packets = await publisher.ReadUntilClosedAsync();
        var disconnect = Assert.Single(packets);
        Assert.Equal(14, disconnect.Type);
        Assert.Equal(0x90, disconnect.Body[0]);
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.TopicLevels));
    }

    [Fact]
    public async Task A_3_1_1_publish_to_a_too_long_topic_closes_the_connection_without_PUBACK()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumTopicLength = 8);
        using var counters = new BrokerCounters(broker.Broker);
        await using var publisher = await RawMqttClient.ConnectMqttAsync(broker.Port, 4, "pub");

        await publisher.SendAsync(Publish(4, "much/too/long", [1], qos: 1, packetId: 1));

        Assert.Empty(await publisher.ReadUntilClosedAsync());
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.TopicLength));
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public async Task Too_long_or_too_deep_filters_get_SUBACK_topic_filter_invalid(int level)
    {
        await using var broker = await TestBroker.StartAsync(o => (o.MaximumTopicLength, o.MaximumTopicLevels) = (12, 3));
        using var counters = new BrokerCounters(broker.Broker);
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, level, "sub");

        await client.SendAsync(Packet(0x82, U16(3), level == 5 ? [0] : [], Str("a/b/+/#"), [0], Str("long-filter/#"), [0], Str("a/b/#"), [0]));

        var suback = await client.ReadPacketAsync();
        var reasons = suback!.Body.AsSpan(level == 5 ? 3 : 2);
        Assert.Equal(level == 5 ? "8F8F00" : "808000", Hex(reasons));
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.FilterLevels));
        Assert.Equal(1, counters.LimitsReached(MqttLimitNames.FilterLength));
        Assert.Equal(1, broker.Broker.SubscriptionCount);
    }

    [Fact]
    public async Task A_will_topic_beyond_the_limits_refuses_the_CONNECT()
    {
        await using var broker = await TestBroker.StartAsync(o => o.MaximumTopicLevels = 2);
        await using var client = await RawMqttClient.ConnectAsync(broker.Port);

        await client.SendAsync(Connect(5, "willing", willTopic: "a/b/c", willPayload: [1]));

        Assert.Equal(0x90, (await client.ReadPacketAsync())!.Body[1]);
    }

    [Fact]
    public async Task A_subscription_granted_with_a_delivery_check_receives_only_what_the_policy_lets_through()
    {
        var policy = new TestPolicy
        {
            Authorize = filter => filter == "#" ? MqttSubscribeAuthorization.GrantedWithDeliveryCheck : MqttSubscribeAuthorization.Granted,
            Receive = topic => !topic.StartsWith("secret/", StringComparison.Ordinal),
        };
        await using var broker = await TestBroker.StartAsync(policy: policy);
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", MqttNetVersion.V500);
        await publisher.PublishAsync("secret/retained", "s", qos: 1, retain: true);
        await publisher.PublishAsync("open/retained", "o", qos: 1, retain: true);
        await using var subscriber = await MqttNetClient.ConnectAsync(broker.Port, "sub", MqttNetVersion.V500);
        await using var plain = await MqttNetClient.ConnectAsync(broker.Port, "plain", MqttNetVersion.V500);

        await subscriber.SubscribeAsync("#");
        await plain.SubscribeAsync("secret/#");
        await publisher.PublishAsync("secret/live", "s", qos: 1);
        await publisher.PublishAsync("open/live", "o", qos: 0);
        await publisher.PublishAsync("open/last", "o", qos: 1);

        await subscriber.WaitForAsync(3, "the open messages");
        await plain.WaitForAsync(2, "the secret messages through an unconditional grant");
        Assert.Equal(["open/retained", "open/live", "open/last"], subscriber.Messages.Select(m => m.Topic));
        Assert.Equal(["secret/retained", "secret/live"], plain.Messages.Select(m => m.Topic));
    }

    private static async Task TrySendAsync(RawMqttClient client, byte[] bytes)
    {
        try
        {
            await client.SendAsync(bytes);
        }
        catch (IOException)
        {
            // The broker may already have closed the socket; what it sent before is what the test checks.
        }
    }

    private static async Task<MqttClientConnectResultCode> RefusalOfMqttNetAsync(int port, string clientId, MqttNetVersion version)
    {
        using var client = new MqttClientFactory().CreateMqttClient();
        var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId(clientId).WithProtocolVersion(version).WithTimeout(TimeSpan.FromSeconds(10)).Build();
        try
        {
            var result = await client.ConnectAsync(options);
            return result.ResultCode;
        }
        catch (MQTTnet.Adapter.MqttConnectingFailedException ex)
        {
            // MQTTnet 5 reports a refusal only in the message ("Connecting with MQTT server failed (QuotaExceeded).").
            return Enum.GetValues<MqttClientConnectResultCode>().Where(c => ex.Message.Contains($"({c})", StringComparison.Ordinal)).DefaultIfEmpty(MqttClientConnectResultCode.UnspecifiedError).First();
        }
    }
}
