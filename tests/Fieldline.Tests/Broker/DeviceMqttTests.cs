using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>Devices over MQTT against the whole platform, with clients others wrote (MQTTnet, mosquitto_pub/sub).</summary>
public sealed class DeviceMqttTests
{
    [Fact]
    public async Task A_device_with_its_token_connects_and_is_online_until_it_disconnects()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        using (client)
        {
            Assert.Equal(MqttClientConnectResultCode.Success, result);
            await Poll.UntilAsync(() => StatusAsync(environment, "dev-1"), s => s == "online", "status online after CONNECT");
            await client.DisconnectAsync();
        }

        await Poll.UntilAsync(() => StatusAsync(environment, "dev-1"), s => s == "offline", "status offline after DISCONNECT");
        var device = await environment.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/dev-1");
        Assert.NotNull(device!["last_seen"]);
    }

    [Fact]
    public async Task Wrong_token_and_unknown_device_are_refused_with_bad_user_name_or_password_on_5()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await environment.RegisterAsync("dev-1");

        var (wrong, wrongResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "c1", "dev-1", "not-the-token"));
        var (unknown, unknownResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "c2", "nobody", "x"));
        var (anonymous, anonymousResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "c3", null, null));
        wrong.Dispose();
        unknown.Dispose();
        anonymous.Dispose();

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, wrongResult);
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, unknownResult);
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, anonymousResult);
    }

    [Fact]
    public async Task Mosquitto_pub_with_a_wrong_token_is_refused_as_not_authorised_on_3_1_1()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await environment.RegisterAsync("dev-1");

        var result = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-V", "mqttv311", "-i", "dev-1", "-u", "dev-1", "-P", "wrong", "-t", "sensor/dev-1/telemetry", "-m", "{}"]);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("not authori", result.Error + result.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_device_in_maintenance_is_refused_as_not_authorized()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        using (var update = await environment.Client.PutAsJsonAsync("/api/v1/devices/dev-1", new { name = "Device dev-1", type = "sensor", status = "maintenance" }))
        {
            update.EnsureSuccessStatusCode();
        }

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, result);
    }

    [Fact]
    public async Task Repeated_wrong_tokens_lock_the_device_out_even_with_the_right_token()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        for (var i = 0; i < 10; i++)
        {
            var (wrong, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", "wrong"));
            wrong.Dispose();
        }

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, result);
    }

    [Fact]
    public async Task A_device_reaches_only_its_own_topics()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        await environment.RegisterAsync("dev-2");
        var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        using var _client = client;

        var foreignPublish = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("sensor/dev-2/telemetry").WithPayload("{\"type\":\"t\",\"value\":1}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var ownPublish = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("device/dev-1/events").WithPayload("x").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var subscribe = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("sensor/+/telemetry")
            .WithTopicFilter("device/dev-1/#")
            .WithTopicFilter("#")
            .Build());

        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, foreignPublish.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, ownPublish.ReasonCode);
        Assert.Equal(
            [MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized],
            subscribe.Items.Select(i => i.ResultCode).ToArray());
        Assert.Empty(await environment.Telemetry.GetLatestAsync("dev-2", CancellationToken.None));
    }

    [Fact]
    public async Task The_operator_reads_the_broker_status_under_SYS_and_a_device_may_neither_read_nor_write_it()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var operatorSub = ExternalProcess.Start("mosquitto_sub", ["-h", "127.0.0.1", "-p", Port(environment), "-i", "operator", "-u", "$admin", "-P", TestEnvironment.AdminKey, "-t", "$SYS/broker/version", "-C", "1", "-W", "20"]);
        var version = await operatorSub.StandardOutput.ReadToEndAsync();
        await operatorSub.WaitForExitAsync();
        Assert.StartsWith("fieldline version ", version.Trim(), StringComparison.Ordinal);

        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        using var _client = client;
        var subscribe = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("$SYS/#").Build());
        var publish = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("$SYS/broker/version").WithPayload("forged").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, Assert.Single(subscribe.Items).ResultCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, publish.ReasonCode);
    }

    [Fact]
    public async Task Mosquitto_sub_on_another_devices_topic_gets_suback_0x80_on_3_1_1()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        await environment.RegisterAsync("dev-2");

        var result = await ExternalProcess.RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", Port(environment), "-V", "mqttv311", "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "sensor/dev-2/#", "-C", "1", "-W", "3"]);

        Assert.Contains("denied", result.Error + result.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Telemetry_from_mosquitto_pub_is_returned_by_the_rest_queries()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var lines = new StringBuilder();
        for (var i = 0; i < 10; i++)
        {
            lines.Append("{\"sensor_id\":\"dev-1\",\"type\":\"temperature\",\"value\":").Append(20 + i).Append(",\"unit\":\"°C\",\"timestamp\":").Append(1_750_000_000 + i).Append("}\n");
        }

        lines.Append("{\"ts\":1750000010000,\"values\":{\"temperature\":30,\"humidity\":40.5}}\n");
        var result = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-V", "mqttv311", "-q", "1", "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "sensor/dev-1/telemetry", "-l"], lines.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());

        var latest = await environment.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/dev-1/telemetry/latest");
        var byMetric = latest!.ToDictionary(p => p!["metric"]!.GetValue<string>(), p => p!["value"]!.GetValue<double>());
        Assert.Equal(30, byMetric["temperature"]);
        Assert.Equal(40.5, byMetric["humidity"]);

        var raw = await environment.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/dev-1/telemetry/temperature?from=1750000000000&to=1750000011000");
        Assert.Equal([20.0, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30], raw!["points"]!.AsArray().Select(p => p!["value"]!.GetValue<double>()).ToArray());

        var aggregate = await environment.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/dev-1/telemetry/temperature/aggregate?from=1750000000000&to=1750000011000&interval=1h");
        var bucket = Assert.Single(aggregate!)!;
        Assert.Equal(11, bucket["count"]!.GetValue<long>());
        Assert.Equal(25, bucket["mean"]!.GetValue<double>(), 6);
    }

    [Fact]
    public async Task An_invalid_payload_is_refused_with_0x99_while_the_valid_ones_around_it_are_stored()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        using var _client = client;

        MqttApplicationMessage Message(string payload) => new MqttApplicationMessageBuilder().WithTopic("sensor/dev-1/telemetry").WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
        var before = await client.PublishAsync(Message("{\"type\":\"pressure\",\"value\":1,\"timestamp\":1750000000}"));
        var invalid = await client.PublishAsync(Message("{\"type\":\"pressure\",\"value\":\"high\"}"));
        var truncated = await client.PublishAsync(Message("{\"type\":\"pressure\",\"val"));
        var after = await client.PublishAsync(Message("{\"type\":\"pressure\",\"value\":3,\"timestamp\":1750000002}"));

        Assert.Equal(MqttClientPublishReasonCode.Success, before.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, invalid.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, truncated.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, after.ReasonCode);
        Assert.True(client.IsConnected, "an invalid payload must not cost the device its connection");
        var raw = await environment.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/dev-1/telemetry/pressure?from=1750000000000&to=1750000003000");
        Assert.Equal([1.0, 3.0], raw!["points"]!.AsArray().Select(p => p!["value"]!.GetValue<double>()).ToArray());
    }

    [Fact]
    public async Task A_killed_device_connection_publishes_its_last_will_and_the_device_goes_offline()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var port = Port(environment);
        using var watcher = ExternalProcess.Start("mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-i", "operator", "-u", "$admin", "-P", TestEnvironment.AdminKey, "-t", "device/+/status", "-C", "1", "-W", "20"]);
        using var device = ExternalProcess.Start("mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "device/dev-1/command", "--will-topic", "device/dev-1/status", "--will-payload", "offline"]);
        await Poll.UntilAsync(() => StatusAsync(environment, "dev-1"), s => s == "online", "the device online");
        await Poll.UntilAsync(() => Task.FromResult(environment.GetService<Fieldline.Mqtt.Server.MqttBroker>().SubscriptionCount), c => c >= 2, "both subscriptions in place");

        device.Kill();

        var output = await watcher.StandardOutput.ReadToEndAsync();
        await watcher.WaitForExitAsync();
        Assert.Equal("offline", output.Trim());
        await Poll.UntilAsync(() => StatusAsync(environment, "dev-1"), s => s == "offline", "status offline after the will");
    }

    [Theory]
    [InlineData("delete")]
    [InlineData("rotate")]
    [InlineData("maintenance")]
    public async Task Revoking_a_device_closes_its_live_connection(string revocation)
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        using var _client = client;
        Assert.Equal(MqttClientConnectResultCode.Success, result);
        var disconnected = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };

        using var response = revocation switch
        {
            "delete" => await environment.Client.DeleteAsync("/api/v1/devices/dev-1"),
            "rotate" => await environment.Client.PostAsync("/api/v1/devices/dev-1/token", null),
            _ => await environment.Client.PutAsJsonAsync("/api/v1/devices/dev-1", new { name = "Device dev-1", type = "sensor", status = "maintenance" }),
        };
        response.EnsureSuccessStatusCode();

        var reason = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MqttClientDisconnectReason.NotAuthorized, reason);
    }

    [Fact]
    public async Task A_last_will_on_another_devices_topic_is_refused_at_connect()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        await environment.RegisterAsync("dev-2");
        var options = MqttTestClient.Options(environment, "dev-1", "dev-1", token);
        options.WillTopic = "sensor/dev-2/telemetry";
        options.WillPayload = Encoding.UTF8.GetBytes("{\"type\":\"t\",\"value\":666}");

        var (client, result) = await MqttTestClient.ConnectAsync(options);
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, result);
    }

    [Fact]
    public async Task A_device_cannot_take_over_the_session_of_another_device_by_its_client_id()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token1 = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var token2 = (await environment.RegisterAsync("dev-2"))["token"]!.GetValue<string>();
        var (victim, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token1));
        using var _victim = victim;

        var (thief, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-2", token2, cleanStart: false));
        thief.Dispose();

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, result);
        var ping = victim.PingAsync();
        await ping.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(victim.IsConnected, "the device whose client id was tried must stay connected");
    }

    private static string Port(TestEnvironment environment) => environment.Application.MqttPort!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<string?> StatusAsync(TestEnvironment environment, string deviceId)
    {
        var device = await environment.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/{deviceId}");
        return device!["status"]?.GetValue<string>();
    }
}
