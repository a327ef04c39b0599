using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Fieldline.Load;
using MQTTnet;
using MQTTnet.Protocol;

// Load generator for the bench/*.sh scripts. Not part of the test suite.
//   fieldline-load ingest --url URL --admin-key KEY --mqtt-port PORT [--mqtt-host 127.0.0.1] [--devices 20]
//                         [--messages 5000 (per device)] [--values-per-message 10] [--inflight 100]
//   fieldline-load idle --mqtt-port PORT --pid BROKER_PID [--connections 5000] [--user U --password P] [--settle 3]
//   fieldline-load fanin|fanout|durable --mqtt-port PORT [broker options] [workload options]: see BrokerUsage below.
//   fieldline-load shadow|commands --url URL --admin-key KEY --mqtt-port PORT [--devices 1000] ...: see Usage.
//   fieldline-load coap --coap-port PORT [--url URL --admin-key KEY | --path time] [--clients 100] [--seconds 10]: see Usage.
var command = args.Length > 0 ? args[0] : "";
var options = ParseOptions(args.Skip(1).ToArray());
try
{
    return command switch
    {
        "ingest" => await Ingest.RunAsync(options),
        "idle" => await Idle.RunAsync(options),
        "fanin" => await FanIn.RunAsync(options),
        "fanout" => await FanOut.RunAsync(options),
        "durable" => await DurableSession.RunAsync(options),
        "shadow" => await ShadowUpdates.RunAsync(options),
        "commands" => await CommandRoundTrips.RunAsync(options),
        "coap" => await CoapRequests.RunAsync(options),
        _ => Usage(),
    };
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return Usage();
}
catch (Exception ex) when (command is "fanin" or "fanout" or "durable" or "shadow" or "commands" or "coap")
{
    // A broker that refused or dropped a client: the run has no figure, and the script says why.
    Console.Error.WriteLine($"error: {command}: {ex.GetType().Name}: {ex.Message}");
    return 1;
}

static int Usage()
{
    Console.Error.WriteLine("usage: fieldline-load ingest --url URL --admin-key KEY --mqtt-port PORT [--devices 20] [--messages 5000] [--values-per-message 10] [--inflight 100]");
    Console.Error.WriteLine("       fieldline-load idle --mqtt-port PORT --pid PID [--connections 5000] [--user U --password P] [--settle 3]");
    Console.Error.WriteLine("       fieldline-load fanin --mqtt-port PORT [--publishers 10] [--messages 200000 (in all)] [--qos 0] [--persistent-subscriber 0|1]");
    Console.Error.WriteLine("                            [--devices-url URL --admin-key KEY (publishers are devices sending telemetry)] [--label fanin]");
    Console.Error.WriteLine("       fieldline-load fanout --mqtt-port PORT [--subscribers 100] [--messages 10000 (published)] [--qos 0]");
    Console.Error.WriteLine("       fieldline-load durable --mqtt-port PORT [--messages 50000] [--store TEXT (printed with the result)]");
    Console.Error.WriteLine("       fieldline-load shadow --url URL --admin-key KEY --mqtt-port PORT [--devices 1000] [--updates 20 (per device)]");
    Console.Error.WriteLine("                             or --echo 1 --mqtt-port PORT (any broker: QoS 1 round trips through bench/{id}/echo)");
    Console.Error.WriteLine("       fieldline-load commands --url URL --admin-key KEY --mqtt-port PORT [--devices 1000] [--commands 5000] [--concurrency 100]");
    Console.Error.WriteLine("       fieldline-load coap --coap-port PORT [--url URL --admin-key KEY (telemetry POSTs) | --path time (GETs of any server)]");
    Console.Error.WriteLine("                           [--clients 100] [--seconds 10] [--warmup 2] [--values 5] [--server-pid PID --clk-tck 100] [--name NAME]");
    Console.Error.WriteLine("         broker options: [--user U --password P] [--mqtt-version 5|4] [--name NAME] [--broker-pid PID --clk-tck 100]");
    Console.Error.WriteLine("                         [--inflight 100] [--payload-size 100] [--timeout 120] [--idle 5]");
    return 2;
}

static Dictionary<string, string> ParseOptions(string[] args)
{
    var result = new Dictionary<string, string>(StringComparer.Ordinal);
    for (var i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
        {
            throw new ArgumentException($"unexpected argument '{args[i]}'");
        }

        result[args[i][2..]] = args[++i];
    }

    return result;
}

internal static class Opt
{
    public static string Get(Dictionary<string, string> o, string name, string? fallback = null) =>
        o.TryGetValue(name, out var v) ? v : fallback ?? throw new ArgumentException($"--{name} is required");

    public static int Int(Dictionary<string, string> o, string name, int fallback) =>
        o.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public static string F(double value, string format = "F0") => value.ToString(format, CultureInfo.InvariantCulture);
}

/// <summary>Durable ingest end to end: QoS 1 telemetry with pipelined publishes, then polls REST until queryable.</summary>
internal static class Ingest
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var url = new Uri(Opt.Get(o, "url"));
        var adminKey = Opt.Get(o, "admin-key");
        var mqttHost = Opt.Get(o, "mqtt-host", "127.0.0.1");
        var mqttPort = Opt.Int(o, "mqtt-port", 1883);
        var deviceCount = Opt.Int(o, "devices", 20);
        var messages = Opt.Int(o, "messages", 5000);
        var valuesPerMessage = Opt.Int(o, "values-per-message", 10);
        var inflight = Opt.Int(o, "inflight", 100);
        var prefix = Opt.Get(o, "device-prefix", $"load-{Environment.ProcessId}");

        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Add("X-Api-Key", adminKey);
        var devices = await DeviceRegistration.RegisterAsync(url, adminKey, prefix, deviceCount);

        var factory = new MqttClientFactory();
        var clients = new IMqttClient[deviceCount];
        for (var i = 0; i < deviceCount; i++)
        {
            clients[i] = factory.CreateMqttClient();
            var clientOptions = new MqttClientOptionsBuilder()
                .WithTcpServer(mqttHost, mqttPort)
                .WithClientId(devices[i].Id)
                .WithCredentials(devices[i].Id, devices[i].Token)
                .WithKeepAlivePeriod(TimeSpan.FromSeconds(60))
                .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
                .WithTimeout(TimeSpan.FromSeconds(60))
                .Build();
            await clients[i].ConnectAsync(clientOptions);
        }

        // Payloads are built before the clock starts: the figure is the server's, not the JSON formatting's.
        var baseTs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - messages;
        var payloads = new byte[deviceCount][][];
        for (var d = 0; d < deviceCount; d++)
        {
            payloads[d] = new byte[messages][];
            for (var m = 0; m < messages; m++)
            {
                var sb = new StringBuilder(32 + valuesPerMessage * 16);
                sb.Append(CultureInfo.InvariantCulture, $"{{\"ts\":{baseTs + m},\"values\":{{");
                for (var v = 0; v < valuesPerMessage; v++)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"{(v == 0 ? "" : ",")}\"m{v}\":{20 + (((m * 7) + v) % 100) / 10.0}");
                }

                payloads[d][m] = Encoding.UTF8.GetBytes(sb.Append("}}").ToString());
            }
        }

        Console.WriteLine($"devices {deviceCount}, messages/device {messages}, values/message {valuesPerMessage}, in-flight/client {inflight}: {(long)deviceCount * messages} messages, {(long)deviceCount * messages * valuesPerMessage} points, payload ~{payloads[0][0].Length} bytes");
        var latencies = new long[deviceCount][];
        long failed = 0;
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, deviceCount).Select(d => Task.Run(async () =>
        {
            var topic = $"sensor/{devices[d].Id}/telemetry";
            var lat = latencies[d] = new long[messages];
            using var gate = new SemaphoreSlim(inflight);
            var tasks = new Task[messages];
            for (var m = 0; m < messages; m++)
            {
                await gate.WaitAsync();
                var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payloads[d][m])
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
                var index = m;
                tasks[m] = PublishAsync(clients[d], message, lat, index, gate, () => Interlocked.Increment(ref failed));
            }

            await Task.WhenAll(tasks);
        })));
        var acked = Stopwatch.GetElapsedTime(start);

        // Poll until the last point of every device's last metric is returned by the REST API.
        var lastMetric = $"m{valuesPerMessage - 1}";
        var lastTs = baseTs + messages - 1;
        var pending = new HashSet<string>(devices.Select(d => d.Id));
        var polls = 0;
        while (pending.Count > 0)
        {
            foreach (var id in pending.ToArray())
            {
                polls++;
                var points = await GetPointsAsync(http, id, lastMetric, lastTs, lastTs + 1, null);
                if (points.Timestamps.Contains(lastTs))
                {
                    pending.Remove(id);
                }
            }

            if (pending.Count > 0)
            {
                if (Stopwatch.GetElapsedTime(start) > acked + TimeSpan.FromMinutes(2))
                {
                    Console.WriteLine($"TIMEOUT: {pending.Count} devices' last points not queryable 2 min after the last PUBACK");
                    break;
                }

                await Task.Delay(5);
            }
        }

        var queryable = Stopwatch.GetElapsedTime(start);
        var all = latencies.SelectMany(l => l).Where(l => l >= 0).OrderBy(l => l).ToArray();
        double Percentile(double p) => all.Length == 0 ? double.NaN : Stopwatch.GetElapsedTime(0, all[Math.Min(all.Length - 1, (int)(p * all.Length))]).TotalMilliseconds;
        var totalMessages = (long)deviceCount * messages;
        var totalPoints = totalMessages * valuesPerMessage;
        Console.WriteLine($"published+acknowledged: {totalMessages - failed}/{totalMessages} messages in {Opt.F(acked.TotalSeconds, "F3")} s = {Opt.F(totalMessages / acked.TotalSeconds)} msg/s = {Opt.F(totalPoints / acked.TotalSeconds)} points/s (failed {failed})");
        Console.WriteLine($"publish->PUBACK latency: p50 {Opt.F(Percentile(0.50), "F2")} ms, p99 {Opt.F(Percentile(0.99), "F2")} ms, max {Opt.F(Percentile(1.0), "F2")} ms");
        Console.WriteLine($"all queryable: {Opt.F(queryable.TotalSeconds, "F3")} s after the first publish ({polls} polls) = {Opt.F(totalPoints / queryable.TotalSeconds)} points/s end to end");

        // Outside the timing: check that nothing was lost (count every point of the first and last metric).
        long missing = 0;
        foreach (var (id, _) in devices)
        {
            foreach (var metric in new[] { "m0", lastMetric })
            {
                var count = 0L;
                string? cursor = null;
                do
                {
                    var page = await GetPointsAsync(http, id, metric, baseTs, lastTs + 1, cursor);
                    count += page.Timestamps.Count;
                    cursor = page.NextCursor;
                }
                while (cursor is not null);
                missing += messages - count;
            }
        }

        Console.WriteLine($"verification: {(missing == 0 ? "every point of m0 and " + lastMetric + " of every device is stored" : $"MISSING {missing} points (m0 and {lastMetric})")}");
        foreach (var client in clients)
        {
            await client.DisconnectAsync(new MqttClientDisconnectOptions());
            client.Dispose();
        }

        return failed == 0 && missing == 0 && pending.Count == 0 ? 0 : 1;
    }

    private static async Task PublishAsync(IMqttClient client, MqttApplicationMessage message, long[] latencies, int index, SemaphoreSlim gate, Action onFailure)
    {
        var t0 = Stopwatch.GetTimestamp();
        try
        {
            var result = await client.PublishAsync(message);
            latencies[index] = Stopwatch.GetTimestamp() - t0;
            if (!result.IsSuccess)
            {
                onFailure();
            }
        }
        catch (Exception ex)
        {
            latencies[index] = -1;
            onFailure();
            Console.Error.WriteLine($"publish failed: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            gate.Release();
        }
    }

    private static async Task<(HashSet<long> Timestamps, string? NextCursor)> GetPointsAsync(HttpClient http, string id, string metric, long from, long to, string? cursor)
    {
        var uri = $"/api/v1/devices/{id}/telemetry/{metric}?from={from}&to={to}&limit=10000" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}");
        using var response = await http.GetAsync(new Uri(uri, UriKind.Relative));
        if (!response.IsSuccessStatusCode)
        {
            return ([], null);
        }

        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var set = new HashSet<long>();
        foreach (var point in body.RootElement.GetProperty("points").EnumerateArray())
        {
            set.Add(point.TryGetProperty("timestamp", out var ts) ? ts.GetInt64() : point.GetProperty("ts").GetInt64());
        }

        var next = body.RootElement.TryGetProperty("next_cursor", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        return (set, next);
    }
}

/// <summary>Memory per idle connection: broker RSS with N idle raw-socket MQTT connections minus RSS with none.</summary>
internal static class Idle
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var port = Opt.Int(o, "mqtt-port", 1883);
        var pid = Opt.Int(o, "pid", 0);
        var count = Opt.Int(o, "connections", 5000);
        var user = o.GetValueOrDefault("user");
        var password = o.GetValueOrDefault("password");
        var settle = TimeSpan.FromSeconds(Opt.Int(o, "settle", 3));
        var name = Opt.Get(o, "name", "broker");

        // Warm-up connection, then let the broker settle (GC, pools) before the baseline.
        using (var warm = await ConnectAsync(port, "idle-warmup", user, password))
        {
            await Task.Delay(200);
        }

        await Task.Delay(settle);
        var before = RssKb(pid);
        var sockets = new List<Socket>(count);
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            sockets.Add(await ConnectAsync(port, $"idle-{Environment.ProcessId}-{i}", user, password));
        }

        var connectSeconds = sw.Elapsed.TotalSeconds;
        await Task.Delay(settle);
        var after = RssKb(pid);
        Console.WriteLine($"{name}: {count} idle connections (CONNACK ok each, opened in {Opt.F(connectSeconds, "F1")} s): RSS {before} KB -> {after} KB = {Opt.F((after - before) / (double)count, "F2")} KB per connection");
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        return 0;
    }

    private static long RssKb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("no VmRSS");
    }

    // MQTT 3.1.1 CONNECT, clean session, keep-alive 0 (no keep-alive), optional user name and password.
    private static async Task<Socket> ConnectAsync(int port, string clientId, string? user, string? password)
    {
        var body = new List<byte> { 0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 4 };
        byte flags = 0x02;
        if (user is not null)
        {
            flags |= 0x80;
        }

        if (password is not null)
        {
            flags |= 0x40;
        }

        body.Add(flags);
        body.AddRange([0, 0]);
        AddString(body, clientId);
        if (user is not null)
        {
            AddString(body, user);
        }

        if (password is not null)
        {
            AddString(body, password);
        }

        var packet = new List<byte> { 0x10 };
        var remaining = body.Count;
        do
        {
            var b = (byte)(remaining % 128);
            remaining /= 128;
            packet.Add(remaining > 0 ? (byte)(b | 0x80) : b);
        }
        while (remaining > 0);
        packet.AddRange(body);

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port);
        await socket.SendAsync(packet.ToArray());
        var connack = new byte[4];
        var read = 0;
        while (read < 4)
        {
            var n = await socket.ReceiveAsync(connack.AsMemory(read));
            if (n == 0)
            {
                throw new InvalidOperationException($"{clientId}: connection closed before CONNACK");
            }

            read += n;
        }

        if (connack[0] != 0x20 || connack[3] != 0)
        {
            throw new InvalidOperationException($"{clientId}: CONNACK refused ({Convert.ToHexString(connack)})");
        }

        return socket;
    }

    private static void AddString(List<byte> buffer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        buffer.Add((byte)(bytes.Length >> 8));
        buffer.Add((byte)bytes.Length);
        buffer.AddRange(bytes);
    }
}
