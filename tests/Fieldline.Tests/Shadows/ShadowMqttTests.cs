using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Shadows;

/// <summary>The device side of the shadow: its MQTT topics, played by an MQTTnet client with the device's token.</summary>
public sealed class ShadowMqttTests
{
    [Fact]
    public async Task A_device_gets_the_delta_reports_back_and_the_delta_disappears()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("lamp-1"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "lamp-1", token);
        await device.SubscribeAsync("device/lamp-1/shadow/#");

        using var patch = await env.Client.PatchAsync("/api/v1/devices/lamp-1/shadow", Json("""{"state":{"desired":{"led":"on","config":{"interval":10}}}}"""));
        patch.EnsureSuccessStatusCode();
        var delta = await device.NextAsync("device/lamp-1/shadow/delta");
        await device.PublishAsync("device/lamp-1/shadow/update", """{"state":{"reported":{"led":"on","config":{"interval":10}}},"clientToken":"t-1"}""");
        var accepted = await device.NextAsync("device/lamp-1/shadow/update/accepted");
        var shadow = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/lamp-1/shadow"))!;

        Assert.Equal("""{"led":"on","config":{"interval":10}}""", delta["state"]!.ToJsonString());
        Assert.Equal(1, (long)delta["version"]!);
        Assert.Equal("t-1", (string?)accepted["clientToken"]);
        Assert.Equal(2, (long)accepted["version"]!);
        Assert.Equal("{}", shadow["state"]!["delta"]!.ToJsonString());
        Assert.Equal("on", (string?)shadow["state"]!["reported"]!["led"]);
    }

    [Fact]
    public async Task Get_answers_with_the_document_and_bad_updates_are_rejected_with_a_code()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("lamp-2"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "lamp-2", token);
        await device.SubscribeAsync("device/lamp-2/shadow/+/+");

        await device.PublishAsync("device/lamp-2/shadow/update", """{"state":{"reported":{"led":""");
        var truncated = await device.NextAsync("device/lamp-2/shadow/update/rejected");
        await device.PublishAsync("device/lamp-2/shadow/update", """{"state":{"reported":{"a":1}},"version":7,"clientToken":"stale"}""");
        var stale = await device.NextAsync("device/lamp-2/shadow/update/rejected");
        await device.PublishAsync("device/lamp-2/shadow/update", "{\"state\":{\"reported\":{\"blob\":\"" + new string('x', 9000) + "\"}}}");
        var large = await device.NextAsync("device/lamp-2/shadow/update/rejected");
        await device.PublishAsync("device/lamp-2/shadow/get", "");
        var got = await device.NextAsync("device/lamp-2/shadow/get/accepted");

        Assert.Equal(400, (int)truncated["code"]!);
        Assert.Equal(409, (int)stale["code"]!);
        Assert.Equal("stale", (string?)stale["clientToken"]);
        Assert.Equal(413, (int)large["code"]!);
        Assert.Equal(0, (long)got["version"]!);
        Assert.Equal("{}", got["state"]!["reported"]!.ToJsonString());
    }

    [Fact]
    public async Task A_device_coming_back_online_receives_the_current_delta_without_asking()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("lamp-3"))["token"]!;
        using (var patch = await env.Client.PatchAsync("/api/v1/devices/lamp-3/shadow", Json("""{"state":{"desired":{"mode":"eco"}}}""")))
        {
            patch.EnsureSuccessStatusCode();
        }

        await using var device = await DeviceMqttClient.ConnectAsync(env, "lamp-3", token);
        await device.SubscribeAsync("device/lamp-3/shadow/delta");
        var delta = await device.NextAsync("device/lamp-3/shadow/delta");

        Assert.Equal("""{"mode":"eco"}""", delta["state"]!.ToJsonString());
    }

    [Fact]
    public async Task A_device_cannot_touch_another_devices_shadow()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("lamp-4"))["token"]!;
        await env.RegisterAsync("lamp-5");
        await using var device = await DeviceMqttClient.ConnectAsync(env, "lamp-4", token);

        var result = await device.Client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("device/lamp-5/shadow/update")
            .WithPayload("""{"state":{"reported":{"hijacked":true}}}""")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
        var shadow = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/lamp-5/shadow"))!;

        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, result.ReasonCode);
        Assert.Equal(0, (long)shadow["version"]!);
    }

    [Fact]
    public async Task Telemetry_updates_reported_state_only_for_the_configured_device_types()
    {
        await using var env = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Shadows:TelemetryToReported:0"] = "actuator" });
        var valveToken = (string)(await env.RegisterAsync("valve-1", "actuator"))["token"]!;
        var sensorToken = (string)(await env.RegisterAsync("probe-1", "sensor"))["token"]!;
        await using var valve = await DeviceMqttClient.ConnectAsync(env, "valve-1", valveToken);
        await using var probe = await DeviceMqttClient.ConnectAsync(env, "probe-1", sensorToken);

        await valve.PublishAsync("sensor/valve-1/telemetry", """{"type":"position","value":42.5}""");
        await probe.PublishAsync("sensor/probe-1/telemetry", """{"type":"temperature","value":20}""");
        var valveShadow = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/valve-1/shadow"))!;
        var probeShadow = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/probe-1/shadow"))!;

        // The PUBACK follows the shadow write, so no wait is needed.
        Assert.Equal(42.5, (double)valveShadow["state"]!["reported"]!["position"]!);
        Assert.Equal(0, (long)probeShadow["version"]!);
    }

    [Fact]
    public async Task Mosquitto_clients_playing_the_device_get_the_delta_and_report_it_away()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("mq-lamp"))["token"]!;
        var port = env.Application.MqttPort!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using (var patch = await env.Client.PatchAsync("/api/v1/devices/mq-lamp/shadow", Json("""{"state":{"desired":{"led":"off"}}}""")))
        {
            patch.EnsureSuccessStatusCode();
        }

        // Subscribing gets the current delta without asking (3.1.1 client, its own client id).
        var delta = await ExternalProcess.RunAsync(
            "mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-i", "mq-lamp", "-u", "mq-lamp", "-P", token, "-q", "1", "-t", "device/mq-lamp/shadow/delta", "-C", "1", "-W", "20"]);
        var report = await ExternalProcess.RunAsync(
            "mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-i", "mq-lamp", "-u", "mq-lamp", "-P", token, "-q", "1", "-t", "device/mq-lamp/shadow/update", "-m", """{"state":{"reported":{"led":"off"}}}"""]);
        var shadow = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/mq-lamp/shadow"))!;

        Assert.True(delta.ExitCode == 0, delta.ToString());
        Assert.Equal("off", (string?)JsonNode.Parse(delta.Output)!["state"]!["led"]);
        Assert.True(report.ExitCode == 0, report.ToString());
        Assert.Equal("{}", shadow["state"]!["delta"]!.ToJsonString());
        Assert.Equal(2, (long)shadow["version"]!);
    }

    [Fact]
    public async Task An_unknown_device_type_for_telemetry_to_reported_is_refused_at_start_with_a_clear_error()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Shadows:TelemetryToReported:0"] = "toaster" }));

        Assert.Contains("Shadows:TelemetryToReported must hold device types (sensor, actuator, gateway); 'toaster' is not one.", error.Message, StringComparison.Ordinal);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
