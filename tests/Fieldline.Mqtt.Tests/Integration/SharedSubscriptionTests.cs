using Fieldline.Mqtt.Tests.Infrastructure;
using Xunit.Abstractions;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>Shared subscriptions, <c>$share/{group}/{filter}</c>: each message goes to one member of the group.</summary>
public sealed class SharedSubscriptionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(MqttNetVersion.V311, 1)]
    [InlineData(MqttNetVersion.V500, 1)]
    [InlineData(MqttNetVersion.V500, 0)]
    public async Task Messages_are_spread_evenly_over_the_members_and_each_reaches_exactly_one(MqttNetVersion version, int qos)
    {
        await using var broker = await TestBroker.StartAsync();
        var members = new List<MqttNetClient>();
        for (var i = 0; i < 3; i++)
        {
            var member = await MqttNetClient.ConnectAsync(broker.Port, $"worker-{i}", version);
            await member.SubscribeAsync("$share/workers/jobs/#", qos);
            members.Add(member);
        }

        await using var other = await MqttNetClient.ConnectAsync(broker.Port, "other-group", version);
        await other.SubscribeAsync("$share/audit/jobs/#", qos);
        await using var plain = await MqttNetClient.ConnectAsync(broker.Port, "plain", version);
        await plain.SubscribeAsync("jobs/#", qos);

        const int messages = 300;
        // The publisher stays connected until everything arrived: MQTTnet may drop QoS 0 packets still in its send
        // path when it is disposed at once.
        await using var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", version);
        for (var i = 0; i < messages; i++)
        {
            await publisher.PublishAsync($"jobs/{i % 7}", $"job-{i}", qos);
        }

        await Poll.UntilAsync(() => members.Sum(m => m.Messages.Count) >= messages, $"{messages} messages over the group", () => $"{string.Join(",", members.Select(m => m.Messages.Count))} other {other.Messages.Count} plain {plain.Messages.Count}");
        await other.WaitForAsync(messages, "every message in the second group (its only member)");
        await plain.WaitForAsync(messages, "every message for the plain subscription");

        var counts = members.Select(m => m.Messages.Count).ToArray();
        output.WriteLine($"spread over 3 members: {string.Join(", ", counts)}");
        var all = members.SelectMany(m => m.Messages.Select(r => r.Payload)).ToList();
        Assert.Equal(messages, all.Count);
        Assert.Equal(messages, all.Distinct().Count());

        // Round-robin over members with room: each gets a third, give or take what a full window moved.
        Assert.All(counts, c => Assert.InRange(c, messages / 3 - 20, messages / 3 + 20));
        foreach (var member in members)
        {
            await member.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_member_that_disconnects_hands_its_unacknowledged_messages_to_another_member()
    {
        await using var broker = await TestBroker.StartAsync();

        // A member that reads but never acknowledges, and one that works.
        var stalled = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "stalled");
        await stalled.SendAsync(Subscribe(5, 1, "$share/g/work/#", 1));
        Assert.Equal(9, (await stalled.ReadPacketAsync())!.Type);
        await using var healthy = await MqttNetClient.ConnectAsync(broker.Port, "healthy", MqttNetVersion.V500);
        await healthy.SubscribeAsync("$share/g/work/#", 1);

        const int messages = 40;
        await using (var publisher = await MqttNetClient.ConnectAsync(broker.Port, "pub", MqttNetVersion.V500))
        {
            for (var i = 0; i < messages; i++)
            {
                await publisher.PublishAsync($"work/{i}", $"w{i}", qos: 1);
            }
        }

        var stalledGot = 0;
        while (await stalled.TryReadPacketAsync(TimeSpan.FromMilliseconds(300)) is { Type: 3 })
        {
            stalledGot++;
        }

        Assert.True(stalledGot > 0, "the stalled member received none of the messages, so the test shows nothing");
        stalled.Abort();
        await stalled.DisposeAsync();

        await healthy.WaitForAsync(messages, $"all {messages} messages, {stalledGot} of them first sent to the stalled member");
        Assert.Equal(Enumerable.Range(0, messages).Select(i => $"w{i}").Order(), healthy.Messages.Select(m => m.Payload).Distinct().Order());
    }

    [Fact]
    public async Task Invalid_shared_filters_are_refused_and_No_Local_on_a_shared_subscription_is_a_protocol_error()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await RawMqttClient.ConnectMqttAsync(broker.Port, 5, "c");
        await client.SendAsync(Packet(0x82, U16(1), [0], Str("$share/g+/t"), [1], Str("$share//t"), [1], Str("$share/g"), [1], Str("$share/g/t/#"), [1]));
        Assert.Equal("90 0001008F8F8F01", (await client.ReadPacketAsync())!.ToString());

        await client.SendAsync(Subscribe(5, 2, "$share/g/t", 0x05));
        var packets = await client.ReadUntilClosedAsync();
        Assert.Equal(0x82, Assert.Single(packets).Body[0]);
    }
}
