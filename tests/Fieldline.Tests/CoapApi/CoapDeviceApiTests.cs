using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Coap.Client;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Fieldline.CoapApi;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.CoapApi;

/// <summary>
/// The device API over CoAP against the real host, with libcoap's coap-client (a client written outside this
/// project) where it can show the point, and Fieldline's own client or a raw UDP socket where a test needs the exact
/// codes or bytes.
/// </summary>
public sealed class CoapDeviceApiTests
{
    [Fact]
    public async Task Telemetry_posted_by_coap_client_as_json_and_senml_is_durable_when_acknowledged_and_returned_by_the_rest_api()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-th-1");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var senmlCbor = Path.Combine(env.DataDir, "pack.cbor");
        await File.WriteAllBytesAsync(senmlCbor, Convert.FromHexString("81a3" + "0068" + Convert.ToHexString("pressure"u8) + "0163" + Convert.ToHexString("hPa"u8) + "02fb408fa66666666666")); // 1012.8

        var json = await CoapClientAsync("-m", "post", "-t", "50", "-e", $$$"""{"ts":{{{now}}},"values":{"temperature":21.5}}""", Url(env, $"api/v1/{token}/telemetry"));
        var senml = await CoapClientAsync("-m", "post", "-t", "110", "-e", """[{"bn":"env/","n":"voltage","u":"V","v":3.3}]""", Url(env, $"api/v1/{token}/telemetry"));
        var cbor = await CoapClientAsync("-m", "post", "-t", "112", "-f", senmlCbor, Url(env, $"api/v1/{token}/telemetry"));

        // The answers came after the durable write, so the points are there without waiting.
        var latest = (await env.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/coap-th-1/telemetry/latest"))!;
        Assert.True(json.ExitCode == 0 && senml.ExitCode == 0 && cbor.ExitCode == 0, $"coap-client: {json} / {senml} / {cbor}");
        Assert.Equal("", (json.Output + json.Error + senml.Output + senml.Error + cbor.Output + cbor.Error).Trim()); // 2.04 without payload
        Assert.Equal(21.5, (double)latest.Single(p => (string?)p!["metric"] == "temperature")!["value"]!);
        Assert.Equal(3.3, (double)latest.Single(p => (string?)p!["metric"] == "env/voltage")!["value"]!);
        Assert.Equal("hPa", (string?)latest.Single(p => (string?)p!["metric"] == "pressure")!["unit"]);
        Assert.Equal("online", (string?)(await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/coap-th-1"))!["status"]);
    }

    [Fact]
    public async Task Bound_to_all_interfaces_coap_answers_over_ipv4_and_ipv6()
    {
        await using var env = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Bind"] = "0.0.0.0" });
        var token = await RegisterAsync(env, "coap-dual-1");
        var port = env.Application.CoapPort;

        var overIpv4 = await CoapClientAsync("-m", "get", $"coap://127.0.0.1:{port}/api/v1/{token}/shadow");
        Assert.Equal(0, (int)JsonNode.Parse(overIpv4.Output)!["version"]!);
        Assert.Contains($"CoAP:  coap://127.0.0.1:{port}", env.Banner, StringComparison.Ordinal);
        if (Socket.OSSupportsIPv6)
        {
            var overIpv6 = await CoapClientAsync("-m", "get", $"coap://[::1]:{port}/api/v1/{token}/shadow");
            Assert.Equal(0, (int)JsonNode.Parse(overIpv6.Output)!["version"]!);
        }
    }

    [Fact]
    public async Task Bad_telemetry_gets_4_00_saying_why_and_a_content_format_it_does_not_take_gets_4_15()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-th-2");

        var truncated = await CoapClientAsync("-m", "post", "-e", """{"values":{"t":""", Url(env, $"api/v1/{token}/telemetry"));
        var textString = await CoapClientAsync("-m", "post", "-t", "110", "-e", """[{"n":"label","vs":"on"}]""", Url(env, $"api/v1/{token}/telemetry"));
        var xml = await CoapClientAsync("-m", "post", "-t", "41", "-e", "<t/>", Url(env, $"api/v1/{token}/telemetry"));

        Assert.StartsWith("4.00", truncated.Error.Trim(), StringComparison.Ordinal);
        Assert.Contains("'vs' values are not stored", textString.Error, StringComparison.Ordinal);
        Assert.StartsWith("4.15", xml.Error.Trim(), StringComparison.Ordinal);
        Assert.Empty((await env.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/coap-th-2/telemetry/latest"))!);
    }

    [Fact]
    public async Task A_wrong_token_gets_4_01_an_address_that_keeps_guessing_gets_4_29_and_an_unknown_path_gets_4_04()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-th-3");

        var wrong = await CoapClientAsync("-m", "post", "-e", "{}", Url(env, "api/v1/not-a-token/telemetry"));
        var unknownPath = await CoapClientAsync("-m", "get", Url(env, $"api/v1/{token}/nothing"));
        await using var client = new CoapClient(Endpoint(env));
        var codes = new List<CoapCode>();
        for (var i = 1; i < CoapDeviceSessions.MaximumFailuresPerSource; i++) // coap-client's wrong token was the first failure
        {
            codes.Add((await client.SendAsync(CoapCode.Get, $"api/v1/guess-{i}/shadow")).Code);
        }

        var throttled = await client.SendAsync(CoapCode.Get, $"api/v1/{token}/shadow"); // even a good token, from this address
        Assert.StartsWith("4.01 The token in the path is not a device's token.", wrong.Error.Trim(), StringComparison.Ordinal);
        Assert.StartsWith("4.04", unknownPath.Error.Trim(), StringComparison.Ordinal);
        Assert.All(codes, code => Assert.Equal(CoapCode.Unauthorized, code));
        Assert.Equal(CoapCode.TooManyRequests, throttled.Code);
        Assert.DoesNotContain(token, string.Join('\n', env.Logs.Entries.Select(e => e.Message)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Coap_client_observing_the_shadow_receives_the_delta_as_desired_changes()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-lamp-1");
        var listener = env.GetService<CoapListener>();

        var observing = CoapClientAsync("-m", "get", "-s", "8", "-B", "10", Url(env, $"api/v1/{token}/shadow"));
        await Poll.UntilAsync(() => Task.FromResult(listener.Server!.ObserverCount), n => n == 1, "coap-client observing the shadow");
        await PatchDesiredAsync(env, "coap-lamp-1", """{"led":"on"}""");
        await PatchDesiredAsync(env, "coap-lamp-1", """{"led":"off","level":3}""");
        var result = await observing;

        // coap-client prints each document as it comes, with nothing between them: the answer, then two notifications.
        var documents = result.Output.Replace("}{\"state\"", "}\n{\"state\"", StringComparison.Ordinal).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(documents.Length == 3, $"expected the answer and 2 notifications, got: {result}");
        Assert.Equal("{}", JsonNode.Parse(documents[0])!["state"]!["delta"]!.ToJsonString());
        Assert.Equal("""{"led":"on"}""", JsonNode.Parse(documents[1])!["state"]!["delta"]!.ToJsonString());
        Assert.Equal("""{"led":"off","level":3}""", JsonNode.Parse(documents[2])!["state"]!["delta"]!.ToJsonString());
    }

    [Fact]
    public async Task A_shadow_larger_than_a_kilobyte_arrives_intact_through_coap_clients_block_wise_get()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-big-1");
        var desired = new JsonObject();
        for (var i = 0; i < 40; i++)
        {
            desired[$"setting_{i:D2}"] = new string((char)('a' + (i % 26)), 40);
        }

        await PatchDesiredAsync(env, "coap-big-1", desired.ToJsonString());
        var fetched = await CoapClientAsync("-m", "get", "-b", "64", Url(env, $"api/v1/{token}/shadow"));

        Assert.True(fetched.Output.Length > 2048, $"expected more than 2 KiB, got {fetched}");
        Assert.True(JsonNode.DeepEquals(desired, JsonNode.Parse(fetched.Output)!["state"]!["desired"]), $"the shadow in 64-byte blocks differs: {fetched.Output}");
    }

    [Fact]
    public async Task Reported_state_posted_over_coap_closes_the_delta_and_an_observer_sees_it_close()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-lamp-2");
        await PatchDesiredAsync(env, "coap-lamp-2", """{"mode":"eco"}""");
        await using var device = new CoapClient(Endpoint(env));
        await using var observations = device.ObserveAsync($"api/v1/{token}/shadow").GetAsyncEnumerator();

        Assert.True(await observations.MoveNextAsync());
        var first = Document(observations.Current);
        var reported = await device.SendAsync(CoapCode.Post, $"api/v1/{token}/shadow/reported", """{"mode":"eco","temperature":21}"""u8.ToArray(), CoapContentFormat.Json);
        Assert.True(await observations.MoveNextAsync());
        var closed = Document(observations.Current);
        var stale = await device.SendAsync(CoapCode.Post, $"api/v1/{token}/shadow/reported?version=1", """{"mode":"x"}"""u8.ToArray(), CoapContentFormat.Json);
        var notObject = await device.SendAsync(CoapCode.Post, $"api/v1/{token}/shadow/reported", "[1]"u8.ToArray(), CoapContentFormat.Json);

        Assert.Equal("""{"mode":"eco"}""", first["state"]!["delta"]!.ToJsonString());
        Assert.Equal(CoapCode.Changed, reported.Code);
        Assert.Equal(2, (long)Document(reported)["version"]!);
        Assert.Equal("{}", closed["state"]!["delta"]!.ToJsonString());
        Assert.Equal(21, (int)closed["state"]!["reported"]!["temperature"]!);
        Assert.Equal(CoapCode.PreconditionFailed, stale.Code);
        Assert.Equal(CoapCode.BadRequest, notObject.Code);
        var shadow = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/coap-lamp-2/shadow"))!;
        Assert.Equal("eco", (string?)shadow["state"]!["reported"]!["mode"]);
    }

    [Fact]
    public async Task A_command_reaches_the_observing_device_is_delivered_on_its_ack_and_succeeds_on_its_response()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-valve-1", "actuator");
        await using var device = new CoapClient(Endpoint(env));
        await using var observations = device.ObserveAsync($"api/v1/{token}/commands").GetAsyncEnumerator();
        Assert.True(await observations.MoveNextAsync());
        var before = observations.Current;

        using var create = await env.Client.PostAsync("/api/v1/devices/coap-valve-1/commands", new StringContent("""{"type":"open","parameters":{"percent":40}}""", Encoding.UTF8, "application/json"));
        var commandId = (string)(await create.Content.ReadFromJsonAsync<JsonObject>())!["command_id"]!;
        Assert.True(await observations.MoveNextAsync());
        var notified = (JsonArray)JsonNode.Parse(observations.Current.Payload)!;
        var delivered = await Poll.UntilAsync(
            () => env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/coap-valve-1/commands/{commandId}"),
            c => (string?)c!["state"] == "delivered",
            "the command delivered once the device acknowledged the notification");
        var answered = await device.SendAsync(CoapCode.Post, $"api/v1/{token}/commands/{commandId}/response", """{"status":"success","message":"opened"}"""u8.ToArray(), CoapContentFormat.Json);
        var again = await device.SendAsync(CoapCode.Post, $"api/v1/{token}/commands/{commandId}/response", """{"status":"success"}"""u8.ToArray(), CoapContentFormat.Json);
        var command = (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/coap-valve-1/commands/{commandId}"))!;

        Assert.Equal("[]", Encoding.UTF8.GetString(before.Payload));
        Assert.Equal(commandId, (string?)notified.Single()!["command_id"]);
        Assert.Equal(40, (int)notified.Single()!["parameters"]!["percent"]!);
        Assert.NotNull(delivered!["delivered_at"]);
        Assert.Equal(CoapCode.Changed, answered.Code);
        Assert.Equal(CoapCode.NotFound, again.Code); // finished already
        Assert.Equal("succeeded", (string?)command["state"]);
        Assert.Equal("opened", (string?)command["message"]);
    }

    [Fact]
    public async Task A_pending_command_is_in_the_answer_to_the_devices_get_and_a_response_for_another_id_is_refused()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-valve-2", "actuator");
        using var create = await env.Client.PostAsync("/api/v1/devices/coap-valve-2/commands", new StringContent("""{"type":"close"}""", Encoding.UTF8, "application/json"));
        var commandId = (string)(await create.Content.ReadFromJsonAsync<JsonObject>())!["command_id"]!;

        var listed = await CoapClientAsync("-m", "get", Url(env, $"api/v1/{token}/commands"));
        await Poll.UntilAsync(
            () => env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/coap-valve-2/commands/{commandId}"),
            c => (string?)c!["state"] == "delivered",
            "the command delivered once it went out in the answer");
        var mismatched = await CoapClientAsync("-m", "post", "-t", "50", "-e", """{"command_id":"cmd-other","status":"success"}""", Url(env, $"api/v1/{token}/commands/{commandId}/response"));
        var failed = await CoapClientAsync("-m", "post", "-t", "50", "-e", """{"status":"failed","message":"stuck"}""", Url(env, $"api/v1/{token}/commands/{commandId}/response"));

        Assert.Equal(commandId, (string?)JsonNode.Parse(listed.Output)!.AsArray().Single()!["command_id"]);
        Assert.StartsWith("4.00 command_id in the body differs", mismatched.Error.Trim(), StringComparison.Ordinal);
        Assert.Equal("", failed.Error.Trim());
        Assert.Equal("failed", (string?)(await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/coap-valve-2/commands/{commandId}"))!["state"]);
    }

    [Fact]
    public async Task A_retransmitted_telemetry_post_is_answered_twice_and_stored_once()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-th-4");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var datagram = Request(0x1234, [7, 7], $"api/v1/{token}/telemetry", Encoding.UTF8.GetBytes($$$"""{"ts":{{{now}}},"values":{"count":1}}"""));
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Connect(Endpoint(env));

        await udp.SendAsync(datagram);
        var first = await ReceiveAsync(udp);
        await udp.SendAsync(datagram); // as if the ACK was lost
        var second = await ReceiveAsync(udp);

        Assert.Equal(first, second);
        Assert.Equal(0x44, first[1]); // 2.04
        var points = (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/coap-th-4/telemetry/count?from={now - 1000}&to={now + 1000}"))!;
        Assert.Single(points["points"]!.AsArray());
    }

    [Fact]
    public async Task A_device_stays_online_while_it_observes_and_goes_offline_once_idle()
    {
        await using var env = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Coap:IdleTimeoutSeconds"] = "1" });
        var observerToken = await RegisterAsync(env, "coap-watcher");
        var posterToken = await RegisterAsync(env, "coap-poster");
        await using var watcher = new CoapClient(Endpoint(env));
        await using var observations = watcher.ObserveAsync($"api/v1/{observerToken}/shadow").GetAsyncEnumerator();
        Assert.True(await observations.MoveNextAsync());
        await using var poster = new CoapClient(Endpoint(env));
        var posted = await poster.SendAsync(CoapCode.Post, $"api/v1/{posterToken}/telemetry", """{"values":{"x":1}}"""u8.ToArray());

        await Poll.UntilAsync(() => StatusAsync(env, "coap-poster"), s => s == "online", "the poster online after its request");
        await Poll.UntilAsync(() => StatusAsync(env, "coap-poster"), s => s == "offline", "the poster offline after 1 s idle");

        // Idle as long but observing: it is probed with a Confirmable notification of the same state, acknowledges
        // it (the client does), and stays online.
        Assert.True(await observations.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15)), "a probe notification");
        var probe = observations.Current;
        Assert.Equal(CoapCode.Changed, posted.Code);
        Assert.Equal(CoapCode.Content, probe.Code);
        Assert.Equal("online", await StatusAsync(env, "coap-watcher"));
        var history = (await env.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/coap-poster/status-history"))!;
        Assert.Equal(["offline", "online"], history.Select(h => (string)h!["status"]!).Take(2));
        var events = env.GetService<Fieldline.Core.Events.EventBus>()
            .Retained(new Fieldline.Core.Events.EventFilter(new HashSet<string> { "DeviceConnected", "DeviceDisconnected" }, "coap-poster"), 0);
        Assert.Equal(["DeviceConnected coap", "DeviceDisconnected coap"], events.Select(e => $"{e.EventType} {e.Source}"));
        Assert.Equal("idle", (string?)events[1].Payload["reason"]);
    }

    [Fact]
    public async Task Rotating_the_token_ends_the_observation_with_4_01()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = await RegisterAsync(env, "coap-rotated");
        await using var device = new CoapClient(Endpoint(env));
        await using var observations = device.ObserveAsync($"api/v1/{token}/shadow").GetAsyncEnumerator();
        Assert.True(await observations.MoveNextAsync());

        using var rotate = await env.Client.PostAsync("/api/v1/devices/coap-rotated/token", null);
        rotate.EnsureSuccessStatusCode();
        Assert.True(await observations.MoveNextAsync());
        var ended = observations.Current;

        Assert.Equal(CoapCode.Unauthorized, ended.Code);
        await Poll.UntilAsync(() => Task.FromResult(env.GetService<CoapListener>().Server!.ObserverCount), n => n == 0, "the observation ended");
        Assert.Equal(CoapCode.Unauthorized, (await device.SendAsync(CoapCode.Get, $"api/v1/{token}/shadow")).Code);
    }

    private static async Task<string> RegisterAsync(TestEnvironment env, string deviceId, string type = "sensor") =>
        (string)(await env.RegisterAsync(deviceId, type))["token"]!;

    private static async Task PatchDesiredAsync(TestEnvironment env, string deviceId, string desired)
    {
        using var patch = await env.Client.PatchAsync($"/api/v1/devices/{deviceId}/shadow", new StringContent($"{{\"state\":{{\"desired\":{desired}}}}}", Encoding.UTF8, "application/json"));
        patch.EnsureSuccessStatusCode();
    }

    private static async Task<string?> StatusAsync(TestEnvironment env, string deviceId) =>
        (string?)(await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/devices/{deviceId}"))!["status"];

    private static JsonNode Document(CoapClientResponse response) => JsonNode.Parse(response.Payload)!;

    private static IPEndPoint Endpoint(TestEnvironment env) => new(IPAddress.Loopback, env.Application.CoapPort!.Value);

    private static string Url(TestEnvironment env, string path) => $"coap://127.0.0.1:{env.Application.CoapPort}/{path}";

    private static Task<ExternalProcess.Result> CoapClientAsync(params string[] arguments) => ExternalProcess.RunAsync("coap-client-notls", arguments);

    private static byte[] Request(ushort messageId, byte[] token, string path, byte[] payload)
    {
        var buffer = new byte[1152];
        var writer = new CoapMessageWriter(buffer, CoapMessageType.Confirmable, CoapCode.Post, messageId, token);
        foreach (var segment in path.Split('/'))
        {
            writer.WriteOption(CoapOptionNumber.UriPath, segment);
        }

        writer.WritePayload(payload);
        return writer.Written.ToArray();
    }

    private static async Task<byte[]> ReceiveAsync(UdpClient udp)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return (await udp.ReceiveAsync(timeout.Token)).Buffer;
    }
}
