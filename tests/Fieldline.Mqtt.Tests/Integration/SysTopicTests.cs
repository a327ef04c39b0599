using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>The broker's figures under $SYS/broker/, published like mosquitto's on the broker's clock.</summary>
public class SysTopicTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    public static TheoryData<MqttNetVersion> Versions => [MqttNetVersion.V311, MqttNetVersion.V500];

    private static readonly string[] Figures =
    [
        "$SYS/broker/uptime", "$SYS/broker/clients/connected", "$SYS/broker/clients/total", "$SYS/broker/messages/received",
        "$SYS/broker/messages/sent", "$SYS/broker/bytes/received", "$SYS/broker/bytes/sent", "$SYS/broker/subscriptions/count",
        "$SYS/broker/retained messages/count",
    ];

    private static Task<TestBroker> StartAsync(FakeTimeProvider time) =>
        TestBroker.StartAsync(o => o.SysTopicInterval = Interval, timeProvider: time);

    /// <summary>The last payload received on each topic.</summary>
    private static Dictionary<string, string> Latest(MqttNetClient client)
    {
        var latest = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var message in client.Messages)
        {
            latest[message.Topic] = message.Payload;
        }

        return latest;
    }

    private static long Number(Dictionary<string, string> figures, string topic) =>
        long.Parse(figures[topic], System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task A_SYS_subscriber_gets_the_broker_figures_and_sees_them_change(MqttNetVersion version)
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", version);
        await watcher.SubscribeAsync("$SYS/#", 0);

        // The figures published at start are retained, so a late subscriber has them at once.
        await watcher.WaitForAsync(1 + Figures.Length, "the retained $SYS figures");
        var first = Latest(watcher);
        Assert.Equal(SysTopicPublisher.VersionText, first["$SYS/broker/version"]);
        Assert.StartsWith("fieldline version ", first["$SYS/broker/version"], StringComparison.Ordinal);
        Assert.Equal("0 seconds", first["$SYS/broker/uptime"]);
        Assert.Equal(0, Number(first, "$SYS/broker/clients/connected"));
        Assert.Equal(0, Number(first, "$SYS/broker/messages/received"));
        Assert.All(Figures, topic => Assert.True(first.ContainsKey(topic), $"{topic} missing; got {string.Join(", ", first.Keys)}"));

        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "publisher", version);
        await publisher.SubscribeAsync("data/#", 1);
        await publisher.PublishAsync("data/a", "1", qos: 1, retain: true);
        await publisher.PublishAsync("data/b", "2", qos: 1);
        await publisher.WaitForAsync(2, "the publisher's own two messages");

        watcher.Messages.Clear();
        time.Advance(Interval);
        await watcher.WaitForAsync(Figures.Length, "the $SYS figures of the second round");
        var second = Latest(watcher);
        Assert.False(second.ContainsKey("$SYS/broker/version"), "the version is static: published once");
        Assert.Equal("10 seconds", second["$SYS/broker/uptime"]);
        Assert.Equal(2, Number(second, "$SYS/broker/clients/connected"));
        Assert.Equal(2, Number(second, "$SYS/broker/clients/total"));
        Assert.Equal(2, Number(second, "$SYS/broker/messages/received"));
        Assert.Equal(broker.Broker.MessagesReceived, Number(second, "$SYS/broker/messages/received"));

        // Sent so far: the retained figures and the first round to the watcher, the two data messages to the publisher.
        Assert.True(Number(second, "$SYS/broker/messages/sent") >= 2 + 1 + Figures.Length, $"messages/sent {second["$SYS/broker/messages/sent"]}");
        Assert.True(Number(second, "$SYS/broker/bytes/received") > Number(first, "$SYS/broker/bytes/received"), "bytes/received grew");
        Assert.True(Number(second, "$SYS/broker/bytes/sent") > Number(first, "$SYS/broker/bytes/sent"), "bytes/sent grew");
        Assert.Equal(2, Number(second, "$SYS/broker/subscriptions/count"));

        // data/a and the ten $SYS messages themselves, as mosquitto counts.
        Assert.Equal(1 + 1 + Figures.Length, Number(second, "$SYS/broker/retained messages/count"));
    }

    [Fact]
    public async Task Figures_are_republished_every_interval_and_not_in_between()
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", MqttNetVersion.V500);
        await watcher.SubscribeAsync("$SYS/broker/uptime", 0);
        await watcher.WaitForAsync(1, "the retained uptime");

        time.Advance(Interval - TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        time.Advance(Interval);
        await watcher.WaitForAsync(3, "two more uptimes");
        await watcher.SubscribeAsync("marker", 0);
        await watcher.PublishAsync("marker", "m");
        await watcher.WaitForAsync(4, "the marker, published after the advances");
        Assert.Equal(["0 seconds", "10 seconds", "20 seconds", "m"], watcher.Messages.Select(m => m.Payload));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Subscribers_to_wildcard_filters_get_no_SYS_topics(MqttNetVersion version)
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        await using var all = await MqttNetClient.ConnectAsync(broker.Port, "all", version);
        await all.SubscribeAsync("#", 0);
        await all.SubscribeAsync("+/broker/#", 0);
        await all.SubscribeAsync("+/+/uptime", 0);

        time.Advance(Interval);
        time.Advance(Interval);
        await all.PublishAsync("marker", "after two rounds");
        await all.WaitForAsync(1, "the marker");
        Assert.True(broker.Broker.RetainedCount >= 1 + Figures.Length, $"the $SYS messages are retained ({broker.Broker.RetainedCount})");
        Assert.Equal(["marker"], all.Messages.Select(m => m.Topic));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task A_client_cannot_publish_to_SYS(MqttNetVersion version)
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        await using var watcher = await MqttNetClient.ConnectAsync(broker.Port, "watcher", version);
        await watcher.SubscribeAsync("$SYS/broker/uptime", 0);
        await watcher.WaitForAsync(1, "the retained uptime");

        await using var forger = await MqttNetClient.ConnectAsync(broker.Port, "forger", version);
        var result = await forger.Client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("$SYS/broker/uptime").WithPayload("forged").WithRetainFlag()
            .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build());
        if (version == MqttNetVersion.V500)
        {
            Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, result.ReasonCode);
        }

        // Had the forged message been routed, it would reach the watcher before the next round, which follows the PUBACK.
        time.Advance(Interval);
        await watcher.WaitForAsync(2, "the next uptime");
        Assert.Equal(["0 seconds", "10 seconds"], watcher.Messages.Select(m => m.Payload));

        await using var late = await MqttNetClient.ConnectAsync(broker.Port, "late", version);
        await late.SubscribeAsync("$SYS/broker/uptime", 0);
        await late.WaitForAsync(1, "the retained uptime");
        Assert.Equal("10 seconds", Assert.Single(late.Messages).Payload);
    }

    [Fact]
    public async Task An_interval_of_zero_publishes_no_SYS_topics()
    {
        var time = new FakeTimeProvider();
        await using var broker = await TestBroker.StartAsync(o => o.SysTopicInterval = TimeSpan.Zero, timeProvider: time);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, broker.Broker.RetainedCount);
    }
}
