using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Fieldline.Load;

/// <summary>What the device workloads share: many connected devices, each a raw-socket client, and latency figures.</summary>
internal static class DeviceFleet
{
    /// <summary>Registers (when <paramref name="url"/> is given) and connects <paramref name="count"/> devices.</summary>
    public static async Task<(string Id, MqttWireClient Client)[]> ConnectAsync(BrokerTarget target, Uri? url, string? adminKey, string prefix, int count, CancellationToken cancellationToken)
    {
        var identities = url is null
            ? Enumerable.Range(0, count).Select(i => ($"{prefix}-{i:D4}", (string?)null)).ToArray()
            : (await DeviceRegistration.RegisterAsync(url, adminKey!, prefix, count)).Select(d => (d.Id, (string?)d.Token)).ToArray();
        var fleet = new (string Id, MqttWireClient Client)[count];
        for (var i = 0; i < count; i++)
        {
            var (id, token) = identities[i];
            var options = token is null ? target.Client(id) : target.Client(id, user: id, password: token);
            fleet[i] = (id, await MqttWireClient.ConnectAsync(options, cancellationToken, bufferSize: 16 * 1024));
        }

        return fleet;
    }

    /// <summary>"p50 1.23 ms, p99 4.56 ms, max 7.89 ms" of Stopwatch tick latencies.</summary>
    public static (double P50, double P99, double Max) Percentiles(List<long> ticks)
    {
        ticks.Sort();
        double At(double p) => ticks.Count == 0 ? double.NaN : Stopwatch.GetElapsedTime(0, ticks[Math.Min(ticks.Count - 1, (int)(p * ticks.Count))]).TotalMilliseconds;
        return (At(0.50), At(0.99), At(1.0));
    }

    /// <summary>Waits for the next PUBLISH on a topic ending in one of <paramref name="suffixes"/>, acknowledging QoS 1 deliveries; returns which suffix.</summary>
    public static async Task<int> NextAnswerAsync(MqttWireClient client, byte[][] suffixes, CancellationToken cancellationToken)
    {
        while (true)
        {
            while (client.TryTakePacket(out var header, out var offset, out var length))
            {
                if (header >> 4 != MqttWireClient.PublishType)
                {
                    continue; // PUBACKs of the requests
                }

                var topic = client.ReadPublishTopic(offset, length);
                client.ReadPublish(header, offset, length, out var qos, out var packetId);
                if (qos == 1)
                {
                    client.AppendAck(MqttWireClient.PubAckType, packetId);
                }

                for (var s = 0; s < suffixes.Length; s++)
                {
                    if (topic.EndsWith(suffixes[s]))
                    {
                        return s;
                    }
                }
            }

            if (client.SendLength > 0)
            {
                await client.FlushAsync(cancellationToken);
            }

            if (await client.ReceiveAsync(cancellationToken) == 0)
            {
                throw new InvalidOperationException("the broker closed the connection");
            }
        }
    }
}

/// <summary>
/// Shadow updates through MQTT: every device publishes <c>{"state":{"reported":{...}}}</c> on
/// <c>device/{id}/shadow/update</c> and waits for <c>update/accepted</c> before its next one (a closed loop per device,
/// all devices at once). With <c>--echo 1</c> the same loop runs against any broker as a plain round trip: each client
/// publishes at QoS 1 to <c>bench/{id}/echo</c>, which it subscribes to, and waits for its own message; the cheapest
/// request/answer a broker can do, the reference the shadow figure is compared with.
/// </summary>
internal static class ShadowUpdates
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var target = new BrokerTarget(o);
        var echo = Opt.Int(o, "echo", 0) == 1;
        var url = echo ? null : new Uri(Opt.Get(o, "url"));
        var adminKey = echo ? null : Opt.Get(o, "admin-key");
        var deviceCount = Opt.Int(o, "devices", 1000);
        var updates = Opt.Int(o, "updates", 20);
        using var timeout = new CancellationTokenSource(target.Timeout);
        var fleet = await DeviceFleet.ConnectAsync(target, url, adminKey, $"{target.RunId}-sh", deviceCount, timeout.Token);
        foreach (var (id, client) in fleet)
        {
            if (echo)
            {
                await client.SubscribeAsync($"bench/{id}/echo", 1, timeout.Token);
            }
            else
            {
                await client.SubscribeAsync($"device/{id}/shadow/update/accepted", 1, timeout.Token);
                await client.SubscribeAsync($"device/{id}/shadow/update/rejected", 1, timeout.Token);
            }
        }

        // A quarter of the run first, so that the figures are of JIT-compiled code on both sides.
        await RoundAsync(fleet, echo, Math.Max(1, updates / 4), 0, timeout.Token);
        var cpu = CpuSample.Take(target.BrokerPid);
        var start = Stopwatch.GetTimestamp();
        var (latencies, rejected) = await RoundAsync(fleet, echo, updates, updates, timeout.Token);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var (brokerCpu, loadCpu) = CpuSample.Since(cpu, target.BrokerPid, target.ClockTicks);
        var total = (long)deviceCount * updates;
        var (p50, p99, max) = DeviceFleet.Percentiles(latencies);
        Console.WriteLine($"{target.Name}: {deviceCount} devices x {updates} {(echo ? "QoS 1 echo round trips" : "shadow updates (reported -> update/accepted)")}, one at a time per device");
        RunControl.Result(
            ("broker", target.Name),
            ("workload", echo ? "echo" : "shadow"),
            ("devices", deviceCount),
            ("operations", total),
            ("rejected", rejected),
            ("per_s", RunControl.PerSecond(total, seconds)),
            ("p50_ms", p50),
            ("p99_ms", p99),
            ("max_ms", max),
            ("broker_us_per_op", RunControl.MicrosPer(brokerCpu, total)),
            ("load_us_per_op", RunControl.MicrosPer(loadCpu, total)));
        foreach (var (_, client) in fleet)
        {
            client.Dispose();
        }

        return rejected == 0 ? 0 : 1;
    }

    private static async Task<(List<long> Latencies, long Rejected)> RoundAsync((string Id, MqttWireClient Client)[] fleet, bool echo, int updates, int firstSequence, CancellationToken cancellationToken)
    {
        var latencies = new List<long>(fleet.Length * updates);
        long rejected = 0;
        byte[][] answers = echo ? ["/echo"u8.ToArray()] : ["/update/accepted"u8.ToArray(), "/update/rejected"u8.ToArray()];
        await Task.WhenAll(fleet.Select(device => Task.Run(
            async () =>
            {
                var (id, client) = device;
                var topic = Encoding.UTF8.GetBytes(echo ? $"bench/{id}/echo" : $"device/{id}/shadow/update");
                var own = new long[updates];
                for (var k = 0; k < updates; k++)
                {
                    var sequence = firstSequence + k;
                    var temperature = (20 + (sequence % 100 / 10.0)).ToString(CultureInfo.InvariantCulture);
                    var payload = Encoding.UTF8.GetBytes(
                        $$$"""{"state":{"reported":{"temperature":{{{temperature}}},"sequence":{{{sequence}}}}},"clientToken":"{{{sequence}}}"}""");
                    client.AppendPublish(topic, 1, (ushort)((sequence % 65_535) + 1), payload);
                    var t0 = Stopwatch.GetTimestamp();
                    await client.FlushAsync(cancellationToken);
                    if (await DeviceFleet.NextAnswerAsync(client, answers, cancellationToken) == 1)
                    {
                        Interlocked.Increment(ref rejected);
                    }

                    own[k] = Stopwatch.GetTimestamp() - t0;
                }

                lock (latencies)
                {
                    latencies.AddRange(own);
                }
            },
            cancellationToken)));
        return (latencies, rejected);
    }
}

/// <summary>
/// Command round trips: every device subscribes to <c>device/{id}/command</c> and answers each command at once with a
/// CommandResponse on <c>device/{id}/response</c>; <c>--concurrency</c> API callers each POST a command to the next
/// device and long-poll <c>GET …/commands/{id}?wait=true</c> until it has succeeded. One round trip is the caller's
/// POST to the caller seeing <c>succeeded</c>: REST, the command store, MQTT delivery, the device's answer, the
/// store again and the waiting request.
/// </summary>
internal static class CommandRoundTrips
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var target = new BrokerTarget(o);
        var url = new Uri(Opt.Get(o, "url"));
        var adminKey = Opt.Get(o, "admin-key");
        var deviceCount = Opt.Int(o, "devices", 1000);
        var commands = Opt.Int(o, "commands", 5000);
        var concurrency = Opt.Int(o, "concurrency", 100);
        using var timeout = new CancellationTokenSource(target.Timeout);
        var fleet = await DeviceFleet.ConnectAsync(target, url, adminKey, $"{target.RunId}-cmd", deviceCount, timeout.Token);
        foreach (var (id, client) in fleet)
        {
            await client.SubscribeAsync($"device/{id}/command", 1, timeout.Token);
        }

        using var stopDevices = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        var devices = fleet.Select(d => Task.Run(() => AnswerCommandsAsync(d.Id, d.Client, stopDevices.Token))).ToArray();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = concurrency, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var http = new HttpClient(handler) { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Add("X-Api-Key", adminKey);

        await RoundAsync(http, fleet, Math.Max(concurrency, commands / 4), concurrency, timeout.Token);
        var cpu = CpuSample.Take(target.BrokerPid);
        var start = Stopwatch.GetTimestamp();
        var (latencies, failed) = await RoundAsync(http, fleet, commands, concurrency, timeout.Token);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var (brokerCpu, loadCpu) = CpuSample.Since(cpu, target.BrokerPid, target.ClockTicks);
        await stopDevices.CancelAsync();
        await Task.WhenAll(devices).ContinueWith(static _ => { }, TaskScheduler.Default);

        var (p50, p99, max) = DeviceFleet.Percentiles(latencies);
        Console.WriteLine($"{target.Name}: {commands} commands over {deviceCount} connected devices, {concurrency} API callers (POST, then GET ?wait=true until succeeded)");
        RunControl.Result(
            ("broker", target.Name),
            ("workload", "commands"),
            ("devices", deviceCount),
            ("operations", (long)commands),
            ("failed", failed),
            ("per_s", RunControl.PerSecond(commands, seconds)),
            ("p50_ms", p50),
            ("p99_ms", p99),
            ("max_ms", max),
            ("broker_us_per_op", RunControl.MicrosPer(brokerCpu, commands)),
            ("load_us_per_op", RunControl.MicrosPer(loadCpu, commands)));
        foreach (var (_, client) in fleet)
        {
            client.Dispose();
        }

        return failed == 0 ? 0 : 1;
    }

    private static async Task<(List<long> Latencies, long Failed)> RoundAsync(HttpClient http, (string Id, MqttWireClient Client)[] fleet, int commands, int concurrency, CancellationToken cancellationToken)
    {
        var latencies = new List<long>(commands);
        long failed = 0;
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(
            async () =>
            {
                int n;
                while ((n = Interlocked.Increment(ref next)) < commands)
                {
                    var deviceId = fleet[n % fleet.Length].Id;
                    var t0 = Stopwatch.GetTimestamp();
                    using var created = await http.PostAsJsonAsync($"/api/v1/devices/{deviceId}/commands", new { type = "ping", parameters = new { n }, timeout_s = 30 }, cancellationToken);
                    if (!created.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref failed);
                        continue;
                    }

                    using var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync(cancellationToken));
                    var commandId = body.RootElement.GetProperty("command_id").GetString();
                    using var outcome = JsonDocument.Parse(await http.GetStringAsync($"/api/v1/devices/{deviceId}/commands/{commandId}?wait=true&wait_s=30", cancellationToken));
                    var elapsed = Stopwatch.GetTimestamp() - t0;
                    if (outcome.RootElement.GetProperty("state").GetString() != "succeeded")
                    {
                        Interlocked.Increment(ref failed);
                        continue;
                    }

                    lock (latencies)
                    {
                        latencies.Add(elapsed);
                    }
                }
            },
            cancellationToken)));
        return (latencies, failed);
    }

    /// <summary>The device: acknowledges each command and answers it with success at once.</summary>
    private static async Task AnswerCommandsAsync(string deviceId, MqttWireClient client, CancellationToken cancellationToken)
    {
        var responseTopic = Encoding.UTF8.GetBytes($"device/{deviceId}/response");
        ushort packetId = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                while (client.TryTakePacket(out var header, out var offset, out var length))
                {
                    if (header >> 4 != MqttWireClient.PublishType)
                    {
                        continue;
                    }

                    var payload = client.ReadPublish(header, offset, length, out var qos, out var id);
                    if (qos == 1)
                    {
                        client.AppendAck(MqttWireClient.PubAckType, id);
                    }

                    var commandId = CommandId(payload);
                    packetId = (ushort)((packetId % 65_535) + 1);
                    client.AppendPublish(
                        responseTopic,
                        1,
                        packetId,
                        Encoding.UTF8.GetBytes($$"""{"command_id":"{{commandId}}","status":"success","message":"pong","timestamp":{{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}}}"""));
                }

                if (client.SendLength > 0)
                {
                    await client.FlushAsync(cancellationToken);
                }

                if (await client.ReceiveAsync(cancellationToken) == 0)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string? CommandId(ReadOnlySpan<byte> payload)
    {
        var reader = new Utf8JsonReader(payload);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("command_id"u8))
            {
                reader.Read();
                return reader.GetString();
            }
        }

        return null;
    }
}
