using System.Globalization;
using System.Text;
using Fieldline.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>Clients without user name and password: refused by default, a plain MQTT broker outside the platform's topics with --allow-anonymous.</summary>
public sealed class AnonymousMqttTests
{
    private static readonly Dictionary<string, string?> AllowAnonymous = new() { ["Mqtt:AllowAnonymous"] = "true" };

    [Fact]
    public async Task Anonymous_clients_are_refused_by_default_on_both_protocol_levels()
    {
        await using var environment = await TestEnvironment.StartAsync();

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "anon", null, null));
        client.Dispose();
        var mosquitto = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-V", "mqttv311", "-i", "anon", "-t", "plain/topic", "-m", "x"]);

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, result);
        Assert.Contains("not authori", mosquitto.Error + mosquitto.Output, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Anonymous", environment.Banner, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_anonymous_access_on_the_banner_and_a_warning_say_so()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: AllowAnonymous);

        Assert.Contains("Anonymous MQTT clients are allowed", environment.Banner, StringComparison.Ordinal);
        Assert.Contains(environment.Logs.Entries, e => e.Level == LogLevel.Warning && e.Message.StartsWith("Anonymous MQTT clients are allowed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Anonymous_mosquitto_clients_publish_and_subscribe_like_on_a_plain_broker()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: AllowAnonymous);
        var port = Port(environment);

        using var subscriber = ExternalProcess.Start("mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-i", "sub", "-t", "TopicA/+", "-v", "-C", "2", "-W", "20"]);
        await Poll.UntilAsync(() => Task.FromResult(environment.GetService<Fieldline.Mqtt.Server.MqttBroker>().SubscriptionCount), c => c >= 1, "the anonymous subscription");
        foreach (var (topic, version) in new[] { ("TopicA/B", "mqttv311"), ("TopicA/C", "mqttv5") })
        {
            var publish = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", version, "-q", "1", "-t", topic, "-m", "hello"]);
            Assert.True(publish.ExitCode == 0, publish.ToString());
        }

        var output = await subscriber.StandardOutput.ReadToEndAsync();
        await subscriber.WaitForExitAsync();
        Assert.Equal(["TopicA/B hello", "TopicA/C hello"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Anonymous_clients_stay_out_of_device_and_dollar_topics_even_through_wildcards()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: AllowAnonymous);
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var (anonymous, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "anon-1", null, null));
        using var _anonymous = anonymous;
        Assert.Equal(MqttClientConnectResultCode.Success, result);
        var received = new List<string>();
        anonymous.ApplicationMessageReceivedAsync += e =>
        {
            lock (received)
            {
                received.Add(e.ApplicationMessage.Topic);
            }

            return Task.CompletedTask;
        };

        var subscribe = await anonymous.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("sensor/#")
            .WithTopicFilter("device/dev-1/command")
            .WithTopicFilter("$SYS/#")
            .WithTopicFilter("#")
            .WithTopicFilter("+/+/telemetry")
            .Build());
        Assert.Equal(
            [MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.GrantedQoS0],
            subscribe.Items.Select(i => i.ResultCode).ToArray());
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(anonymous, "sensor/dev-1/telemetry")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(anonymous, "device/dev-1/command")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(anonymous, "$SYS/x")).ReasonCode);

        // The device's telemetry and a retained device message must not reach the anonymous '#'; the plain topic after them must.
        var (device, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        using var _device = device;
        await PublishAsync(device, "sensor/dev-1/telemetry", "{\"type\":\"t\",\"value\":1}");
        await PublishAsync(device, "device/dev-1/status", "up", retain: true);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(anonymous, "plain/last")).ReasonCode);
        await Poll.UntilAsync(() => Task.FromResult(Snapshot(received)), r => r.Contains("plain/last"), "the plain message");
        var late = await anonymous.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("+/dev-1/+").Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, late.Items.Single().ResultCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(anonymous, "plain/after")).ReasonCode);
        await Poll.UntilAsync(() => Task.FromResult(Snapshot(received)), r => r.Contains("plain/after"), "the second plain message");

        Assert.Equal(["plain/last", "plain/after"], Snapshot(received));
    }

    [Fact]
    public async Task Fieldline_serve_with_allow_anonymous_and_limit_flags_acts_on_them()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            using var process = await FieldlineProcess.StartAsync(
                dataDir, TestEnvironment.AdminKey, "--allow-anonymous", "--max-topic-levels", "3", "--max-keep-alive", "60", "--anonymous-deny-subscribe", "test/nosubscribe", "--anonymous-deny-publish", "readonly/#");
            var port = process.MqttPort.ToString(CultureInfo.InvariantCulture);

            var plain = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "a/b/c", "-m", "x"]);
            var deep = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "a/b/c/d", "-m", "x"]);

            await Poll.UntilAsync(() => Task.FromResult(process.Output), o => o.Contains("Anonymous MQTT clients are allowed", StringComparison.Ordinal), "the banner line about anonymous clients");
            Assert.True(plain.ExitCode == 0, plain.ToString());
            Assert.Contains("Topic Name invalid", deep.Error + deep.Output, StringComparison.OrdinalIgnoreCase);

            // The keep-alive bound is announced in CONNACK (Server Keep Alive); the deny lists apply.
            using var client = new MqttClientFactory().CreateMqttClient();
            var connected = await client.ConnectAsync(new MqttClientOptionsBuilder()
                .WithTcpServer("127.0.0.1", process.MqttPort)
                .WithClientId("keep-alive")
                .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
                .WithKeepAlivePeriod(TimeSpan.FromSeconds(120))
                .Build());
            Assert.Equal(60, connected.ServerKeepAlive);
            var denied = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("test/nosubscribe").Build());
            Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, denied.Items.Single().ResultCode);
            Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(client, "readonly/x")).ReasonCode);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Denied_filters_keep_anonymous_clients_from_subscribing_receiving_and_publishing_there()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?>(AllowAnonymous)
        {
            ["Mqtt:AnonymousDenySubscribe:0"] = "test/nosubscribe",
            ["Mqtt:AnonymousDenyPublish:0"] = "readonly/#",
        });
        var (anonymous, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "anon-d", null, null));
        using var _anonymous = anonymous;
        var (legacy, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "anon-311", null, null, MQTTnet.Formatter.MqttProtocolVersion.V311));
        using var _legacy = legacy;
        var received = new List<string>();
        anonymous.ApplicationMessageReceivedAsync += e =>
        {
            lock (received)
            {
                received.Add(e.ApplicationMessage.Topic);
            }

            return Task.CompletedTask;
        };

        var subscribe = await anonymous.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("test/nosubscribe")
            .WithTopicFilter("#")
            .WithTopicFilter("$share/g/test/+")
            .WithTopicFilter("$share/g/other/+")
            .Build());
        var legacySubscribe = await legacy.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("test/nosubscribe").Build());

        // 5.0 hears Not authorized; 3.1.1 has only Failure (0x80). A shared group overlapping a denied topic cannot be checked per message.
        Assert.Equal(
            [MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.GrantedQoS0],
            subscribe.Items.Select(i => i.ResultCode).ToArray());
        Assert.Equal(MqttClientSubscribeResultCode.UnspecifiedError, legacySubscribe.Items.Single().ResultCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(anonymous, "readonly/x")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(anonymous, "test/nosubscribe")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(anonymous, "test/other")).ReasonCode);
        await Poll.UntilAsync(() => Task.FromResult(Snapshot(received)), r => r.Contains("test/other"), "the message on test/other");

        Assert.Equal(["test/other"], Snapshot(received));
    }

    [Fact]
    public async Task Anonymous_shared_subscriptions_are_granted_only_outside_the_reserved_topics()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: AllowAnonymous);
        var (anonymous, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "anon-s", null, null));
        using var _anonymous = anonymous;

        var subscribe = await anonymous.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("$share/g/plain/#")
            .WithTopicFilter("$share/g/sensor/#")
            .WithTopicFilter("$share/g/#")
            .Build());

        // A shared group delivers each message to one member, so '#' cannot be granted with a per-message check.
        Assert.Equal(
            [MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.NotAuthorized],
            subscribe.Items.Select(i => i.ResultCode).ToArray());
    }

    [Fact]
    public async Task An_anonymous_persistent_wildcard_subscription_keeps_its_delivery_check_across_a_restart()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string token;
            await using (var first = await TestEnvironment.StartAsync(dataDir: dataDir, configuration: AllowAnonymous))
            {
                token = (await first.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
                var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(first, "anon-p", null, null, MQTTnet.Formatter.MqttProtocolVersion.V311, cleanStart: false));
                using (client)
                {
                    var granted = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("#", MqttQualityOfServiceLevel.AtLeastOnce).Build());
                    Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, granted.Items.Single().ResultCode);
                    await client.DisconnectAsync();
                }
            }

            await using (var second = await TestEnvironment.StartAsync(dataDir: dataDir, configuration: AllowAnonymous))
            {
                Assert.Equal(1, second.GetService<Fieldline.Mqtt.Server.MqttBroker>().SubscriptionCount);
                var (device, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(second, "dev-1", "dev-1", token));
                using (device)
                {
                    Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "sensor/dev-1/telemetry", "{\"type\":\"t\",\"value\":1}")).ReasonCode);
                }

                var (publisher, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(second, "anon-pub", null, null));
                using (publisher)
                {
                    await PublishAsync(publisher, "plain/queued");
                }

                var received = new List<string>();
                var options = MqttTestClient.Options(second, "anon-p", null, null, MQTTnet.Formatter.MqttProtocolVersion.V311, cleanStart: false);
                using var back = new MqttClientFactory().CreateMqttClient();
                back.ApplicationMessageReceivedAsync += e =>
                {
                    lock (received)
                    {
                        received.Add(e.ApplicationMessage.Topic);
                    }

                    return Task.CompletedTask;
                };
                await back.ConnectAsync(options);
                await Poll.UntilAsync(() => Task.FromResult(Snapshot(received)), r => r.Contains("plain/queued"), "the queued plain message");
                Assert.Equal(["plain/queued"], Snapshot(received));
                await back.DisconnectAsync();
            }

            // Without anonymous access the restored anonymous subscription is dropped rather than kept unchecked.
            await using var third = await TestEnvironment.StartAsync(dataDir: dataDir);
            Assert.Equal(0, third.GetService<Fieldline.Mqtt.Server.MqttBroker>().SubscriptionCount);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task An_anonymous_client_cannot_take_a_device_id_as_client_id()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: AllowAnonymous);
        await environment.RegisterAsync("dev-1");

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", null, null));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.ClientIdentifierNotValid, result);
    }

    private static Task<MqttClientPublishResult> PublishAsync(IMqttClient client, string topic, string payload = "x", bool retain = false) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload)).WithRetainFlag(retain).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

    private static string[] Snapshot(List<string> received)
    {
        lock (received)
        {
            return [.. received];
        }
    }

    private static string Port(TestEnvironment environment) => environment.Application.MqttPort!.Value.ToString(CultureInfo.InvariantCulture);
}
