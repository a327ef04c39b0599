using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>Service accounts over MQTT with MQTTnet and mosquitto_pub/sub, against the whole platform.</summary>
public sealed class ServiceAccountMqttTests
{
    private static readonly (string, string)[] IntegrationRules =
    [
        ("publish", "integrations/{username}/out/#"),
        ("subscribe", "sensor/+/telemetry"),
        ("all", "clients/{clientid}/#"),
        ("subscribe", "plant/#"),
    ];

    [Fact]
    public async Task A_service_account_publishes_and_subscribes_as_its_rules_allow_with_placeholders_filled_in()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var password = (await environment.CreateServiceAccountAsync("bridge", IntegrationRules))["password"]!.GetValue<string>();

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "c-7", "bridge", password));
        using var _client = client;
        Assert.Equal(MqttClientConnectResultCode.Success, result);

        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(client, "integrations/bridge/out/a")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(client, "clients/c-7/state")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(client, "integrations/other/out/a")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(client, "clients/c-8/state")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(client, "sensor/dev-1/telemetry")).ReasonCode);

        var subscribe = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("sensor/+/telemetry")
            .WithTopicFilter("sensor/dev-1/telemetry")
            .WithTopicFilter("sensor/#")
            .WithTopicFilter("clients/c-7/#")
            .WithTopicFilter("clients/+/state")
            .WithTopicFilter("plant/+/line/#")
            .WithTopicFilter("plant")
            .WithTopicFilter("#")
            .Build());
        Assert.Equal(
            [
                MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized,
                MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.GrantedQoS0,
                MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized,
            ],
            subscribe.Items.Select(i => i.ResultCode).ToArray());
    }

    [Fact]
    public async Task A_filter_covered_by_a_wider_pattern_is_granted_and_delivers()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var reader = (await environment.CreateServiceAccountAsync("reader", [("subscribe", "plant/#")]))["password"]!.GetValue<string>();
        var writer = (await environment.CreateServiceAccountAsync("writer", [("publish", "plant/+/line/+")]))["password"]!.GetValue<string>();
        var (subscriber, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "reader-1", "reader", reader));
        using var _subscriber = subscriber;
        var received = new List<string>();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            lock (received)
            {
                received.Add(e.ApplicationMessage.Topic);
            }

            return Task.CompletedTask;
        };
        var granted = await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("plant/+/line/b", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, granted.Items.Single().ResultCode);

        var (publisher, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "writer-1", "writer", writer));
        using var _publisher = publisher;
        await PublishAsync(publisher, "plant/north/line/a");
        await PublishAsync(publisher, "plant/north/line/b");

        await Poll.UntilAsync(() => Task.FromResult(Snapshot(received)), r => r.Length >= 1, "the message on plant/north/line/b");
        Assert.Equal(["plant/north/line/b"], Snapshot(received));
    }

    [Fact]
    public async Task Mosquitto_sub_as_a_service_account_reads_device_telemetry_and_is_denied_elsewhere_on_3_1_1()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var password = (await environment.CreateServiceAccountAsync("exporter", [("subscribe", "sensor/+/telemetry"), ("publish", "exports/{username}")]))["password"]!.GetValue<string>();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var port = Port(environment);

        using var reader = ExternalProcess.Start("mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-i", "exp-1", "-u", "exporter", "-P", password, "-t", "sensor/+/telemetry", "-v", "-C", "1", "-W", "20"]);
        await Poll.UntilAsync(() => Task.FromResult(environment.GetService<Fieldline.Mqtt.Server.MqttBroker>().SubscriptionCount), c => c >= 1, "the exporter's subscription");
        var device = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-q", "1", "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "sensor/dev-1/telemetry", "-m", "{\"type\":\"t\",\"value\":1}"]);
        Assert.True(device.ExitCode == 0, device.ToString());
        var output = await reader.StandardOutput.ReadToEndAsync();
        await reader.WaitForExitAsync();

        var denied = await ExternalProcess.RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-i", "exp-2", "-u", "exporter", "-P", password, "-t", "device/#", "-C", "1", "-W", "3"]);
        var published = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-i", "exp-3", "-u", "exporter", "-P", password, "-t", "exports/exporter", "-m", "x"]);
        var refused = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-i", "exp-4", "-u", "exporter", "-P", password, "-t", "exports/other", "-m", "x"]);

        Assert.Equal("sensor/dev-1/telemetry {\"type\":\"t\",\"value\":1}", output.Trim());
        Assert.Contains("denied", denied.Error + denied.Output, StringComparison.OrdinalIgnoreCase);
        Assert.True(published.ExitCode == 0, published.ToString());
        Assert.Contains("not authori", refused.Error + refused.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_wrong_password_is_refused_as_bad_user_name_or_password_on_5_and_not_authorised_on_3_1_1()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await environment.CreateServiceAccountAsync("svc", [("all", "#")], password: "the right password!!");

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "s1", "svc", "the wrong password!!"));
        client.Dispose();
        var mosquitto = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-V", "mqttv311", "-i", "s2", "-u", "svc", "-P", "the wrong password!!", "-t", "a", "-m", "x"]);
        var (right, rightResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "s3", "svc", "the right password!!", MQTTnet.Formatter.MqttProtocolVersion.V311));
        right.Dispose();

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
        Assert.NotEqual(0, mosquitto.ExitCode);
        Assert.Contains("not authori", mosquitto.Error + mosquitto.Output, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(MqttClientConnectResultCode.Success, rightResult);
    }

    [Fact]
    public async Task Repeated_wrong_passwords_lock_the_account_out_even_with_the_right_password()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await environment.CreateServiceAccountAsync("svc", [("all", "#")], password: "the right password!!");
        for (var i = 0; i < 10; i++)
        {
            var (wrong, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "s", "svc", "wrong password " + i));
            wrong.Dispose();
        }

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "s", "svc", "the right password!!"));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, result);
    }

    [Fact]
    public async Task No_password_reaches_the_logs()
    {
        var environment = await TestEnvironment.StartAsync();
        string generated;
        const string Chosen = "chosen-secret-3f9a2c7e";
        const string Rotated = "rotated-secret-81d0b4aa";
        const string Wrong = "wrong-secret-55e1c0d9";
        try
        {
            generated = (await environment.CreateServiceAccountAsync("gen", [("all", "#")]))["password"]!.GetValue<string>();
            await environment.CreateServiceAccountAsync("chosen", [("all", "#")], password: Chosen);
            foreach (var (user, password) in new[] { ("gen", generated), ("chosen", Chosen), ("chosen", Wrong) })
            {
                var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, user + "-c", user, password));
                client.Dispose();
            }

            using var rotate = await environment.Client.PostAsJsonAsync("/api/v1/service-accounts/chosen/password", new { password = Rotated });
            rotate.EnsureSuccessStatusCode();
            await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-i", "m", "-u", "chosen", "-P", Rotated, "-t", "a", "-m", "x"]);
        }
        finally
        {
            await environment.DisposeAsync();
        }

        var logs = string.Join("\n", environment.Logs.Entries.Select(e => e.ToString()));
        Assert.Contains("Authentication of service account chosen", logs, StringComparison.Ordinal);
        foreach (var secret in new[] { generated, Chosen, Rotated, Wrong })
        {
            Assert.DoesNotContain(secret, logs, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("rules", MqttClientDisconnectReason.AdministrativeAction)]
    [InlineData("password", MqttClientDisconnectReason.NotAuthorized)]
    [InlineData("delete", MqttClientDisconnectReason.NotAuthorized)]
    public async Task Changing_an_account_closes_its_live_connections(string change, MqttClientDisconnectReason expected)
    {
        await using var environment = await TestEnvironment.StartAsync();
        var password = (await environment.CreateServiceAccountAsync("svc", [("all", "a/#")]))["password"]!.GetValue<string>();
        var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "svc-1", "svc", password));
        using var _client = client;
        var disconnected = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };

        using var response = change switch
        {
            "rules" => await environment.Client.PatchAsJsonAsync("/api/v1/service-accounts/svc", new { rules = new[] { new { action = "all", pattern = "b/#" } } }),
            "password" => await environment.Client.PostAsync("/api/v1/service-accounts/svc/password", null),
            _ => await environment.Client.DeleteAsync("/api/v1/service-accounts/svc"),
        };
        response.EnsureSuccessStatusCode();

        Assert.Equal(expected, await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        if (change == "rules")
        {
            var (again, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "svc-1", "svc", password));
            using var _again = again;
            Assert.Equal(MqttClientConnectResultCode.Success, result);
            Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(again, "a/x")).ReasonCode);
            Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(again, "b/x")).ReasonCode);
        }
    }

    private static Task<MqttClientPublishResult> PublishAsync(IMqttClient client, string topic) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes("x")).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

    private static string[] Snapshot(List<string> received)
    {
        lock (received)
        {
            return [.. received];
        }
    }

    private static string Port(TestEnvironment environment) => environment.Application.MqttPort!.Value.ToString(CultureInfo.InvariantCulture);
}
