using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Commands;

/// <summary>Commands end to end: the REST API on one side, an MQTTnet client playing the seed's actuator on the other.</summary>
public sealed class CommandsTests
{
    [Fact]
    public async Task A_command_reaches_the_device_as_the_seeds_json_is_delivered_and_succeeds_from_its_response()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("thermo-1", "actuator"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "thermo-1", token);
        await device.SubscribeAsync("device/thermo-1/command");

        var created = await CreateAsync(env, "thermo-1", """{"type":"set_temperature","parameters":{"temperature":21.5},"timeout_s":30}""");
        var id = (string)created["command_id"]!;
        var waiting = env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/thermo-1/commands/{id}?wait=true&wait_s=30");
        var received = await device.NextAsync("device/thermo-1/command");
        var delivered = await Poll.UntilAsync(() => GetAsync(env, "thermo-1", id), c => (string?)c["state"] == "delivered", "the command delivered (the device's PUBACK)");
        await device.PublishAsync("device/thermo-1/response", $$"""{"command_id":"{{id}}","status":"success","message":"temperature set to 21.5°C","timestamp":1}""");
        var outcome = (await waiting)!;

        Assert.Equal("pending", (string?)created["state"]);
        Assert.Equal(id, (string?)received["command_id"]);
        Assert.Equal("set_temperature", (string?)received["type"]);
        Assert.Equal(21.5, (double)received["parameters"]!["temperature"]!);
        Assert.NotNull(received["timestamp"]);
        Assert.NotNull(delivered["delivered_at"]);
        Assert.Equal("succeeded", (string?)outcome["state"]);
        Assert.Equal("temperature set to 21.5°C", (string?)outcome["message"]);
    }

    [Fact]
    public async Task A_failed_response_fails_the_command_and_a_silent_device_times_it_out()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("thermo-2", "actuator"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "thermo-2", token);
        await device.SubscribeAsync("device/thermo-2/command");

        var failing = (string)(await CreateAsync(env, "thermo-2", """{"type":"warp","timeout_s":30}"""))["command_id"]!;
        await device.NextAsync("device/thermo-2/command");
        await device.PublishAsync("device/thermo-2/response", $$"""{"command_id":"{{failing}}","status":"failed","message":"unknown command type"}""");
        var silent = (string)(await CreateAsync(env, "thermo-2", """{"type":"restart","timeout_s":1}"""))["command_id"]!;
        await device.NextAsync("device/thermo-2/command");

        var failed = await Poll.UntilAsync(() => GetAsync(env, "thermo-2", failing), c => (string?)c["state"] == "failed", "the command failed");
        var timedOut = await Poll.UntilAsync(() => GetAsync(env, "thermo-2", silent), c => (string?)c["state"] == "timed_out", "the command timed out", TimeSpan.FromSeconds(15));

        Assert.Equal("unknown command type", (string?)failed["message"]);
        Assert.NotNull(timedOut["delivered_at"]);
    }

    [Fact]
    public async Task A_command_for_an_offline_device_waits_until_it_subscribes_or_expires()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("thermo-3", "actuator"))["token"]!;
        var queued = (string)(await CreateAsync(env, "thermo-3", """{"type":"restart","expires_in_s":60}"""))["command_id"]!;
        var expiring = (string)(await CreateAsync(env, "thermo-3", """{"type":"too_late","expires_in_s":1}"""))["command_id"]!;

        var expired = await Poll.UntilAsync(() => GetAsync(env, "thermo-3", expiring), c => (string?)c["state"] == "expired", "the short-lived command expired", TimeSpan.FromSeconds(15));
        Assert.Equal("pending", (string?)(await GetAsync(env, "thermo-3", queued))["state"]);
        await using var device = await DeviceMqttClient.ConnectAsync(env, "thermo-3", token);
        await device.SubscribeAsync("device/thermo-3/+");
        var received = await device.NextAsync("device/thermo-3/command");
        var delivered = await Poll.UntilAsync(() => GetAsync(env, "thermo-3", queued), c => (string?)c["state"] == "delivered", "the queued command delivered");

        Assert.Equal(queued, (string?)received["command_id"]);
        Assert.Null(expired["delivered_at"]);
        Assert.NotNull(delivered["delivered_at"]);
    }

    [Fact]
    public async Task Mosquitto_clients_playing_the_device_receive_a_queued_command_at_connect_and_answer_it()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("mq-valve", "actuator"))["token"]!;
        var port = env.Application.MqttPort!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var id = (string)(await CreateAsync(env, "mq-valve", """{"type":"open","parameters":{"percent":40},"timeout_s":30}"""))["command_id"]!;

        // The device was offline when the command was made: subscribing delivers it.
        var received = await ExternalProcess.RunAsync(
            "mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-i", "mq-valve", "-u", "mq-valve", "-P", token, "-q", "1", "-t", "device/mq-valve/command", "-C", "1", "-W", "20"]);
        Assert.True(received.ExitCode == 0, received.ToString());
        var command = JsonNode.Parse(received.Output)!;
        var delivered = await Poll.UntilAsync(() => GetAsync(env, "mq-valve", id), c => (string?)c["state"] == "delivered", "the command delivered (mosquitto_sub's PUBACK)");

        var answer = await ExternalProcess.RunAsync(
            "mosquitto_pub",
            ["-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-i", "mq-valve", "-u", "mq-valve", "-P", token, "-q", "1", "-t", "device/mq-valve/response",
             "-m", $$"""{"command_id":"{{id}}","status":"failed","message":"valve jammed","timestamp":1}"""]);
        Assert.True(answer.ExitCode == 0, answer.ToString());
        var outcome = await GetAsync(env, "mq-valve", id);

        Assert.Equal(id, (string?)command["command_id"]);
        Assert.Equal(40, (int)command["parameters"]!["percent"]!);
        Assert.NotNull(delivered["delivered_at"]);
        Assert.Equal("failed", (string?)outcome["state"]);
        Assert.Equal("valve jammed", (string?)outcome["message"]);
    }

    [Fact]
    public async Task A_pending_command_survives_a_restart_and_history_is_paged_newest_first()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string token;
            var ids = new List<string>();
            await using (var first = await TestEnvironment.StartAsync(dataDir: dataDir))
            {
                token = (string)(await first.RegisterAsync("thermo-4", "actuator"))["token"]!;
                for (var i = 0; i < 3; i++)
                {
                    ids.Add((string)(await CreateAsync(first, "thermo-4", "{\"type\":\"step\",\"parameters\":{\"n\":" + i + "}}"))["command_id"]!);
                }
            }

            await using var second = await TestEnvironment.StartAsync(dataDir: dataDir);
            var page1 = (await second.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/thermo-4/commands?limit=2"))!;
            var page2 = (await second.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/thermo-4/commands?limit=2&cursor={(string?)page1["next_cursor"]}"))!;
            await using var device = await DeviceMqttClient.ConnectAsync(second, "thermo-4", token);
            await device.SubscribeAsync("device/thermo-4/command");
            var received = new List<string>();
            for (var i = 0; i < 3; i++)
            {
                received.Add((string)(await device.NextAsync("device/thermo-4/command"))["command_id"]!);
            }

            Assert.Equal([ids[2], ids[1]], page1["items"]!.AsArray().Select(c => (string)c!["command_id"]!));
            Assert.Equal([ids[0]], page2["items"]!.AsArray().Select(c => (string)c!["command_id"]!));
            Assert.Null(page2["next_cursor"]);
            Assert.Equal(ids, received);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Theory]
    [InlineData("""{"parameters":{}}""", "type")]
    [InlineData("""{"type":"x","parameters":[1]}""", "parameters")]
    [InlineData("""{"type":"x","timeout_s":0}""", "timeout_s")]
    [InlineData("""{"type":"x","expires_in_s":"soon"}""", "expires_in_s")]
    [InlineData("""{"type":""", "body")]
    public async Task A_malformed_command_gets_400_naming_the_field(string body, string field)
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("thermo-5", "actuator");

        using var response = await env.Client.PostAsync("/api/v1/devices/thermo-5/commands", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(problem["errors"]?[field] is not null, $"expected an error for '{field}', saw {problem.ToJsonString()}");
    }

    [Fact]
    public async Task Unknown_devices_and_commands_are_404_and_a_malformed_response_gets_0x99()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("thermo-6", "actuator"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "thermo-6", token);

        using var noDevice = await env.Client.PostAsync("/api/v1/devices/nobody/commands", new StringContent("""{"type":"x"}""", Encoding.UTF8, "application/json"));
        using var noCommand = await env.Client.GetAsync("/api/v1/devices/thermo-6/commands/cmd-missing");
        var malformed = await device.Client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("device/thermo-6/response").WithPayload("""{"status":"maybe"}""").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

        Assert.Equal(HttpStatusCode.NotFound, noDevice.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, noCommand.StatusCode);
        Assert.Equal(MqttClientPublishReasonCode.PayloadFormatInvalid, malformed.ReasonCode);
    }

    private static async Task<JsonObject> CreateAsync(TestEnvironment env, string deviceId, string body)
    {
        using var response = await env.Client.PostAsync($"/api/v1/devices/{deviceId}/commands", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"expected 201 for {body}, saw {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private static async Task<JsonObject> GetAsync(TestEnvironment env, string deviceId, string commandId) =>
        (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/{deviceId}/commands/{commandId}"))!;
}
