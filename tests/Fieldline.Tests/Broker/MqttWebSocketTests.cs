using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>MQTT over WebSocket at /mqtt on the HTTP port, next to MQTT over TCP, with MQTTnet.</summary>
public sealed class MqttWebSocketTests
{
    private const string Telemetry = "{\"type\":\"temperature\",\"value\":19.5,\"timestamp\":1750000000}";

    [Fact]
    public async Task A_device_over_WebSocket_and_an_operator_over_TCP_exchange_messages_and_telemetry_is_stored()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        Assert.Contains($"MQTT over WebSocket: ws://127.0.0.1:{environment.Application.HttpUrl.Port}/mqtt", environment.Banner, StringComparison.Ordinal);

        var (operatorClient, operatorResult) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "operator", "$admin", TestEnvironment.AdminKey));
        using var _operator = operatorClient;
        Assert.Equal(MqttClientConnectResultCode.Success, operatorResult);
        var atOperator = Receive(operatorClient);
        await operatorClient.SubscribeAsync("sensor/+/telemetry", MqttQualityOfServiceLevel.AtLeastOnce);

        var (device, deviceResult) = await MqttTestClient.ConnectAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri(environment.Application.MqttWebSocketUrl.ToString()))
            .WithClientId("dev-1")
            .WithCredentials("dev-1", token)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build());
        using var _device = device;
        Assert.Equal(MqttClientConnectResultCode.Success, deviceResult);
        var atDevice = Receive(device);
        await device.SubscribeAsync("device/dev-1/command", MqttQualityOfServiceLevel.AtLeastOnce);

        var published = await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("sensor/dev-1/telemetry").WithPayload(Telemetry).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await operatorClient.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("device/dev-1/command").WithPayload("reboot").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

        Assert.Equal(MqttClientPublishReasonCode.Success, published.ReasonCode);
        Assert.Equal(("sensor/dev-1/telemetry", Telemetry), await atOperator.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(("device/dev-1/command", "reboot"), await atDevice.WaitAsync(TimeSpan.FromSeconds(10)));
        var latest = await environment.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/dev-1/telemetry/latest");
        Assert.Equal(19.5, Assert.Single(latest!)!["value"]!.GetValue<double>());
    }

    [Fact]
    public async Task Over_WebSocket_a_wrong_token_is_refused_as_over_TCP()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await environment.RegisterAsync("dev-1");

        var (client, result) = await MqttTestClient.ConnectAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri(environment.Application.MqttWebSocketUrl.ToString()))
            .WithClientId("dev-1")
            .WithCredentials("dev-1", "wrong")
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build());
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
    }

    [Fact]
    public async Task A_WebSocket_request_without_the_mqtt_subprotocol_is_refused_with_400()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.AddSubProtocol("chat");

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(environment.Application.MqttWebSocketUrl, CancellationToken.None));
        using var plain = await environment.Client.GetAsync("/mqtt");

        Assert.Equal(HttpStatusCode.BadRequest, socket.HttpStatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, plain.StatusCode);
        var problem = await plain.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal("WebSocket upgrade required", problem!["title"]!.GetValue<string>());
    }

    private static Task<(string Topic, string Payload)> Receive(IMqttClient client)
    {
        var received = new TaskCompletionSource<(string, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult((e.ApplicationMessage.Topic, e.ApplicationMessage.ConvertPayloadToString()));
            return Task.CompletedTask;
        };
        return received.Task;
    }
}
