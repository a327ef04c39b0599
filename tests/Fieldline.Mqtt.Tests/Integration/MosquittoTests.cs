using Fieldline.Mqtt.Tests.Infrastructure;
using static Fieldline.Mqtt.Tests.Infrastructure.MosquittoProcess;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>The broker with the mosquitto command-line clients, a second independent implementation.</summary>
public class MosquittoTests
{
    public static TheoryData<string> Versions => ["mqttv311", "mqttv5"];

    private static string[] Common(TestBroker broker, string version, string clientId) =>
        ["-h", "127.0.0.1", "-p", broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", version, "-i", clientId];

    private static Task WaitForSubscriptions(TestBroker broker, int count) =>
        Poll.UntilAsync(() => broker.Broker.SubscriptionCount >= count, $"{count} subscription(s)", () => broker.Broker.SubscriptionCount);

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Mosquitto_clients_publish_and_subscribe_with_wildcards(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var sub = Start("mosquitto_sub", [.. Common(broker, version, "sub"), "-t", "site/+/temp", "-t", "alarms/#", "-v", "-C", "3", "-W", "10"]);
        await WaitForSubscriptions(broker, 2);

        foreach (var (topic, message) in new[] { ("site/a/temp", "21"), ("site/a/humidity", "40"), ("alarms", "fire"), ("alarms/x/y", "smoke") })
        {
            using var pub = Start("mosquitto_pub", [.. Common(broker, version, "pub"), "-t", topic, "-m", message]);
            await pub.WaitForSuccessAsync();
        }

        await sub.WaitForSuccessAsync();
        Assert.Equal(["site/a/temp 21", "alarms fire", "alarms/x/y smoke"], sub.Lines);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task QoS_1_goes_end_to_end_between_mosquitto_clients(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var sub = Start("mosquitto_sub", [.. Common(broker, version, "sub1"), "-q", "1", "-t", "q/#", "-v", "-C", "2", "-W", "10"]);
        await WaitForSubscriptions(broker, 1);

        using var pub = Start("mosquitto_pub", [.. Common(broker, version, "pub1"), "-q", "1", "-t", "q/a", "-m", "one"]);
        await pub.WaitForSuccessAsync();
        using var pub2 = Start("mosquitto_pub", [.. Common(broker, version, "pub2"), "-q", "1", "-t", "q/b", "-m", "two"]);
        await pub2.WaitForSuccessAsync();

        await sub.WaitForSuccessAsync();
        Assert.Equal(["q/a one", "q/b two"], sub.Lines);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Inbound_QoS_2_from_mosquitto_pub_completes_PUBREC_PUBREL_PUBCOMP(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var sub = Start("mosquitto_sub", [.. Common(broker, version, "sub2"), "-q", "2", "-t", "exactly/once", "-C", "1", "-W", "10"]);
        await WaitForSubscriptions(broker, 1);

        // mosquitto_pub exits 0 only after PUBCOMP.
        using var pub = Start("mosquitto_pub", [.. Common(broker, version, "pub-q2"), "-q", "2", "-t", "exactly/once", "-m", "hello"]);
        await pub.WaitForSuccessAsync();
        await sub.WaitForSuccessAsync();
        Assert.Equal(["hello"], sub.Lines);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task A_retained_message_from_mosquitto_pub_reaches_a_late_mosquitto_sub(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        using (var pub = Start("mosquitto_pub", [.. Common(broker, version, "pub-r"), "-r", "-q", "1", "-t", "state/lamp", "-m", "on"]))
        {
            await pub.WaitForSuccessAsync();
        }

        using var sub = Start("mosquitto_sub", [.. Common(broker, version, "late"), "-t", "state/#", "-v", "-C", "1", "-W", "10"]);
        await sub.WaitForSuccessAsync();
        Assert.Equal(["state/lamp on"], sub.Lines);

        using (var clear = Start("mosquitto_pub", [.. Common(broker, version, "pub-clear"), "-r", "-t", "state/lamp", "-n"]))
        {
            await clear.WaitForSuccessAsync();
        }

        await Poll.UntilAsync(() => broker.Broker.RetainedCount == 0, "the retained message to be cleared", () => broker.Broker.RetainedCount);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task The_will_of_a_killed_mosquitto_sub_is_published(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var watcher = Start("mosquitto_sub", [.. Common(broker, version, "watcher"), "-t", "wills/#", "-v", "-C", "1", "-W", "10"]);
        await WaitForSubscriptions(broker, 1);

        using var dying = Start("mosquitto_sub", [.. Common(broker, version, "dying"), "-t", "nothing", "--will-topic", "wills/dying", "--will-payload", "offline", "--will-qos", "1"]);
        await WaitForSubscriptions(broker, 2);
        dying.Kill();

        await watcher.WaitForSuccessAsync();
        Assert.Equal(["wills/dying offline"], watcher.Lines);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task The_will_of_mosquitto_pub_is_not_published_after_its_clean_DISCONNECT(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        using var watcher = Start("mosquitto_sub", [.. Common(broker, version, "watcher"), "-t", "wills/#", "-v", "-C", "1", "-W", "10"]);
        await WaitForSubscriptions(broker, 1);

        using (var clean = Start("mosquitto_pub", [.. Common(broker, version, "clean"), "-t", "x", "-m", "y", "--will-topic", "wills/clean", "--will-payload", "offline"]))
        {
            await clean.WaitForSuccessAsync();
        }

        using (var marker = Start("mosquitto_pub", [.. Common(broker, version, "marker"), "-t", "wills/marker", "-m", "m"]))
        {
            await marker.WaitForSuccessAsync();
        }

        await watcher.WaitForSuccessAsync();
        Assert.Equal(["wills/marker m"], watcher.Lines);
    }

    [Fact]
    public async Task QoS_0_fan_in_delivers_the_tail_a_publisher_sends_just_before_closing_while_the_subscriber_is_backed_up()
    {
        // Regression: the read loop returned on a completed input after waiting for a backed-up subscriber and
        // dropped the complete frames still buffered, i.e. the last messages of `mosquitto_pub -l` before it closed.
        const int Publishers = 4;
        const int PerPublisher = 25_000;
        await using var broker = await TestBroker.StartAsync();
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(file, Enumerable.Range(0, PerPublisher).Select(i => $"{{\"seq\":{i:D8},\"values\":{{\"temperature\":21.5,\"humidity\":40}}}}"));
            using var sub = Start("mosquitto_sub", [.. Common(broker, "mqttv311", "fan-sub"), "-t", "fan/#", "-C", (Publishers * PerPublisher).ToString(System.Globalization.CultureInfo.InvariantCulture), "-W", "14"]);
            await WaitForSubscriptions(broker, 1);
            var port = broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var pubs = Enumerable.Range(1, Publishers)
                .Select(n => Start("sh", "-c", $"exec /usr/bin/mosquitto_pub -h 127.0.0.1 -p {port} -i fan-pub-{n} -t fan/{n} -l < '{file}'"))
                .ToArray();
            foreach (var pub in pubs)
            {
                await pub.WaitForSuccessAsync();
                pub.Dispose();
            }

            await sub.WaitForSuccessAsync();
            Assert.Equal(Publishers * PerPublisher, sub.Lines.Length);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
