using System.Globalization;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>The broker limits as the host configures them (the serve flags set these keys), refused and counted in /metrics.</summary>
public sealed class BrokerLimitsTests
{
    [Fact]
    public async Task Connections_beyond_the_limit_per_address_are_refused_and_counted_in_metrics()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Mqtt:MaximumConnectionsPerAddress"] = "1" });
        var password = (await environment.CreateServiceAccountAsync("svc", [("all", "#")]))["password"]!.GetValue<string>();
        var (first, firstResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "one", "svc", password));
        using var _first = first;

        var (second, secondResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "two", "svc", password));
        second.Dispose();
        var mosquitto = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-V", "mqttv311", "-i", "three", "-u", "svc", "-P", password, "-t", "a", "-m", "x"]);

        Assert.Equal(MqttClientConnectResultCode.Success, firstResult);
        Assert.Equal(MqttClientConnectResultCode.QuotaExceeded, secondResult);
        Assert.Contains("unavailable", mosquitto.Error + mosquitto.Output, StringComparison.OrdinalIgnoreCase);
        var metrics = await environment.ScrapeMetricsAsync();
        Assert.Contains("# TYPE fieldline_mqtt_limits_reached_total counter", metrics, StringComparison.Ordinal);
        Assert.Contains("fieldline_mqtt_limits_reached_total{limit=\"connections_per_address\"} 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains("fieldline_mqtt_connect_refused_total{reason=\"quota_exceeded\"} 2\n", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Topic_and_subscription_limits_from_configuration_refuse_and_count()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?>
        {
            ["Mqtt:MaximumTopicLength"] = "32",
            ["Mqtt:MaximumTopicLevels"] = "4",
            ["Mqtt:MaximumSubscriptionsPerClient"] = "2",
        });
        var password = (await environment.CreateServiceAccountAsync("svc", [("all", "#")]))["password"]!.GetValue<string>();
        var (client, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "c", "svc", password));
        using var _client = client;

        var deep = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("a/b/c/d/e").WithPayload("x"u8.ToArray()).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var subscribe = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(new string('f', 33))
            .WithTopicFilter("x/#")
            .WithTopicFilter("y/#")
            .WithTopicFilter("z/#")
            .Build());

        Assert.Equal(MqttClientPublishReasonCode.TopicNameInvalid, deep.ReasonCode);
        Assert.Equal(
            [MqttClientSubscribeResultCode.TopicFilterInvalid, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.QuotaExceeded],
            subscribe.Items.Select(i => i.ResultCode).ToArray());
        var metrics = await environment.ScrapeMetricsAsync();
        Assert.Contains("fieldline_mqtt_limits_reached_total{limit=\"topic_levels\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("fieldline_mqtt_limits_reached_total{limit=\"filter_length\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("fieldline_mqtt_limits_reached_total{limit=\"subscriptions_per_client\"} 1\n", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_connect_rate_limit_refuses_a_burst_beyond_its_bucket()
    {
        // One token, refilled once in 1000 s: the second CONNECT in a row is refused, whatever the machine's speed.
        await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?>
        {
            ["Mqtt:MaximumConnectRate"] = "0.001",
            ["Mqtt:ConnectRateBurst"] = "1",
        });
        var password = (await environment.CreateServiceAccountAsync("svc", [("all", "#")]))["password"]!.GetValue<string>();
        var (first, firstResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "one", "svc", password));
        first.Dispose();

        var (second, secondResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "two", "svc", password));
        second.Dispose();

        Assert.Equal(MqttClientConnectResultCode.Success, firstResult);
        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, secondResult);
        Assert.Contains("fieldline_mqtt_limits_reached_total{limit=\"connect_rate\"} 1\n", await environment.ScrapeMetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_broker_closes_new_connections_and_counts_them()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Mqtt:MaximumConnections"] = "1" });
        var password = (await environment.CreateServiceAccountAsync("svc", [("all", "#")]))["password"]!.GetValue<string>();
        var (first, _) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "one", "svc", password));
        using var _first = first;

        var mosquitto = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", Port(environment), "-i", "two", "-u", "svc", "-P", password, "-t", "a", "-m", "x"]);

        Assert.NotEqual(0, mosquitto.ExitCode);
        Assert.Contains("fieldline_mqtt_limits_reached_total{limit=\"connections\"} 1\n", await environment.ScrapeMetricsAsync(), StringComparison.Ordinal);
    }

    private static string Port(TestEnvironment environment) => environment.Application.MqttPort!.Value.ToString(CultureInfo.InvariantCulture);
}
