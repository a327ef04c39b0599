using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Fieldline.Load;

/// <summary>What every broker workload takes from the command line.</summary>
internal sealed class BrokerTarget
{
    public BrokerTarget(Dictionary<string, string> o)
    {
        Port = Opt.Int(o, "mqtt-port", 1883);
        User = o.GetValueOrDefault("user");
        Password = o.GetValueOrDefault("password");
        Version = (byte)Opt.Int(o, "mqtt-version", 5);
        if (Version is not (4 or 5))
        {
            throw new ArgumentException("--mqtt-version must be 4 (3.1.1) or 5");
        }

        Name = Opt.Get(o, "name", "broker");
        BrokerPid = Opt.Int(o, "broker-pid", 0);
        ClockTicks = Opt.Int(o, "clk-tck", 100);
        PayloadSize = Opt.Int(o, "payload-size", 100);
        Timeout = TimeSpan.FromSeconds(Opt.Int(o, "timeout", 120));
        Idle = TimeSpan.FromSeconds(Opt.Int(o, "idle", 5));
        Inflight = Opt.Int(o, "inflight", 100);
        RunId = $"load{Environment.ProcessId}";
    }

    public int Port { get; }

    public string? User { get; }

    public string? Password { get; }

    public byte Version { get; }

    public string Name { get; }

    public int BrokerPid { get; }

    public int ClockTicks { get; }

    public int PayloadSize { get; }

    public TimeSpan Timeout { get; }

    /// <summary>How long subscribers may see no new message, once the publishers are done, before the run ends with losses.</summary>
    public TimeSpan Idle { get; }

    /// <summary>QoS 1/2 messages a publisher keeps unacknowledged (capped by the broker's Receive Maximum).</summary>
    public int Inflight { get; }

    /// <summary>Unique per run: client ids and topics carry it, so that runs do not meet each other's sessions.</summary>
    public string RunId { get; }

    public MqttWireOptions Client(string clientId, bool cleanStart = true, uint sessionExpiry = 0, string? user = null, string? password = null) =>
        new(Port, clientId, Version, user ?? User, password ?? Password, cleanStart, sessionExpiry);

    /// <summary>Timestamps of a run's messages start here: distinct per message and all in the past.</summary>
    public static long TimestampBase(long messages) => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - messages - 60_000;
}

/// <summary>
/// Publishes messages with timestamps <c>first</c> … <c>first + count − 1</c> on one topic. QoS 0 messages are
/// written as fast as the socket takes them; QoS 1/2 keep at most a window of messages unacknowledged, and the
/// PUBREL of QoS 2 goes out as each PUBREC arrives.
/// </summary>
internal sealed class Publisher(MqttWireClient client, string topic, byte qos, int maximumInflight, PayloadTemplate payload, long first, int count)
{
    private readonly byte[] _topic = Encoding.UTF8.GetBytes(topic);
    private readonly bool[] _inUse = new bool[65536];
    private ushort _lastId;
    private int _inflight;

    public int Acknowledged { get; private set; }

    /// <summary>Acknowledgements with an error reason code (5.0), e.g. 0x97 Quota exceeded or 0x83 from a failed durable write.</summary>
    public int Refused { get; private set; }

    public int Written { get; private set; }

    /// <summary>When the last message was written (QoS 0) or acknowledged (QoS 1/2).</summary>
    public long FinishedAt { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var window = Math.Max(1, Math.Min(maximumInflight, client.ServerReceiveMaximum));
        var size = client.PublishSize(_topic.Length, qos, payload.Length);
        while (true)
        {
            while (Written < count && (qos == 0 || _inflight < window) && client.Fits(size))
            {
                client.AppendPublish(_topic, qos, qos == 0 ? (ushort)0 : NextId(), payload, first + Written);
                Written++;
            }

            if (client.SendLength > 0)
            {
                await client.FlushAsync(cancellationToken);
            }

            if (qos == 0)
            {
                if (Written == count)
                {
                    break;
                }

                continue;
            }

            if (Written == count && _inflight == 0)
            {
                break;
            }

            if (await client.ReceiveAsync(cancellationToken) == 0)
            {
                throw new InvalidOperationException($"the broker closed the publisher's connection ({Acknowledged}/{count} acknowledged)");
            }

            while (HandleAcknowledgements())
            {
                await client.FlushAsync(cancellationToken);
            }
        }

        FinishedAt = Stopwatch.GetTimestamp();
    }

    private ushort NextId()
    {
        do
        {
            _lastId++;
            if (_lastId == 0)
            {
                _lastId = 1;
            }
        }
        while (_inUse[_lastId]);
        _inUse[_lastId] = true;
        _inflight++;
        return _lastId;
    }

    /// <summary>Handles what arrived; true when it stopped because PUBRELs filled the send buffer.</summary>
    private bool HandleAcknowledgements()
    {
        while (client.Fits(4) && client.TryTakePacket(out var header, out var offset, out var length))
        {
            var type = (byte)(header >> 4);
            switch (type)
            {
                case MqttWireClient.PubAckType or MqttWireClient.PubCompType:
                    {
                        var (id, reason) = client.ReadAck(offset, length);
                        Release(id, reason);
                        break;
                    }

                case MqttWireClient.PubRecType:
                    {
                        var (id, reason) = client.ReadAck(offset, length);
                        if (reason >= 0x80)
                        {
                            Release(id, reason);
                        }
                        else
                        {
                            client.AppendAck(MqttWireClient.PubRelType, id);
                        }

                        break;
                    }

                case 14:
                    throw new InvalidOperationException($"the broker sent DISCONNECT 0x{(length > 0 ? client.Body(offset, length)[0] : 0):X2} to a publisher");
                default:
                    throw new InvalidOperationException($"a publisher received packet type {type}");
            }
        }

        return !client.Fits(4);
    }

    private void Release(ushort id, byte reason)
    {
        if (!_inUse[id])
        {
            throw new InvalidOperationException($"acknowledgement for packet id {id}, which is not in flight");
        }

        _inUse[id] = false;
        _inflight--;
        if (reason >= 0x80)
        {
            Refused++;
        }
        else
        {
            Acknowledged++;
        }
    }
}

/// <summary>
/// Receives messages whose timestamps lie in <c>first</c> … <c>first + expected − 1</c>, acknowledging QoS 1
/// (PUBACK) and QoS 2 (PUBREC, then PUBCOMP for each PUBREL) in one write per batch read, and keeps a bit per
/// message to tell losses from duplicates.
/// </summary>
internal sealed class Subscriber(MqttWireClient client, long first, int expected)
{
    private readonly ulong[] _seen = new ulong[(expected + 63) / 64];
    private volatile int _received;

    public int Received => _received;

    public int Duplicates { get; private set; }

    /// <summary>Messages that are not this run's (another payload, or a timestamp outside the run's range).</summary>
    public int Foreign { get; private set; }

    /// <summary>Messages with the DUP flag (a resend after a reconnect).</summary>
    public int Resent { get; private set; }

    public long LastAt { get; private set; }

    public bool Done => _received >= expected;

    public bool Closed { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                // Packets may be waiting already: a resumed session's messages can arrive with the CONNACK.
                bool more;
                do
                {
                    more = HandleIncoming();
                    if (client.SendLength > 0)
                    {
                        await client.FlushAsync(cancellationToken);
                    }
                }
                while (more);

                if (_received >= expected)
                {
                    return;
                }

                if (await client.ReceiveAsync(cancellationToken) == 0)
                {
                    Closed = true;
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The run's controller gave up waiting: what was received is the result.
        }
    }

    /// <summary>Handles what arrived; true when it stopped because acknowledgements filled the send buffer.</summary>
    private bool HandleIncoming()
    {
        var got = false;
        while (client.Fits(4) && client.TryTakePacket(out var header, out var offset, out var length))
        {
            var type = (byte)(header >> 4);
            if (type == MqttWireClient.PublishType)
            {
                var payload = client.ReadPublish(header, offset, length, out var qos, out var packetId);
                if ((header & 0x08) != 0)
                {
                    Resent++;
                }

                Count(PayloadTemplate.ReadTimestamp(payload));
                got = true;
                if (qos == 1)
                {
                    client.AppendAck(MqttWireClient.PubAckType, packetId);
                }
                else if (qos == 2)
                {
                    client.AppendAck(MqttWireClient.PubRecType, packetId);
                }
            }
            else if (type == MqttWireClient.PubRelType)
            {
                client.AppendAck(MqttWireClient.PubCompType, client.ReadAck(offset, length).PacketId);
            }
            else if (type == 14)
            {
                throw new InvalidOperationException($"the broker sent DISCONNECT 0x{(length > 0 ? client.Body(offset, length)[0] : 0):X2} to a subscriber");
            }
        }

        if (got)
        {
            LastAt = Stopwatch.GetTimestamp();
        }

        return !client.Fits(4);
    }

    private void Count(long timestamp)
    {
        var index = timestamp - first;
        if (timestamp < 0 || index < 0 || index >= expected)
        {
            Foreign++;
            return;
        }

        ref var word = ref _seen[index >> 6];
        var bit = 1UL << (int)(index & 63);
        if ((word & bit) != 0)
        {
            Duplicates++;
            return;
        }

        word |= bit;
        _received++;
    }
}

/// <summary>CPU time of a process from /proc (all threads), and of this one.</summary>
internal readonly struct CpuSample
{
    private readonly long _brokerTicks;
    private readonly TimeSpan _self;

    private CpuSample(long brokerTicks, TimeSpan self)
    {
        _brokerTicks = brokerTicks;
        _self = self;
    }

    public static CpuSample Take(int brokerPid) => new(brokerPid > 0 ? Ticks(brokerPid) : 0, Process.GetCurrentProcess().TotalProcessorTime);

    /// <summary>Broker and load-generator CPU seconds since <paramref name="start"/>.</summary>
    public static (double Broker, double Load) Since(CpuSample start, int brokerPid, int clockTicks)
    {
        var now = Take(brokerPid);
        return ((now._brokerTicks - start._brokerTicks) / (double)clockTicks, (now._self - start._self).TotalSeconds);
    }

    private static long Ticks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");

        // After the ')' that ends the command name: state is field 3, utime 14 and stime 15 of the whole line.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }
}

/// <summary>Waits for a run's subscribers and reports, in one greppable line, what the run measured.</summary>
internal static class RunControl
{
    /// <summary>
    /// Waits until every subscriber has all its messages; or, once the publishers are done, until none has received
    /// anything for <see cref="BrokerTarget.Idle"/>; or the run's timeout. Cancels <paramref name="stop"/> in the
    /// latter cases so that the subscribers return. False when the run ended short.
    /// </summary>
    public static async Task<bool> WaitAsync(BrokerTarget target, IReadOnlyList<Subscriber> subscribers, Task publishers, long start, CancellationTokenSource stop)
    {
        long lastTotal = -1;
        var lastProgress = Stopwatch.GetTimestamp();
        while (true)
        {
            if (subscribers.All(s => s.Done))
            {
                return true;
            }

            if (publishers.IsFaulted)
            {
                await stop.CancelAsync();
                return false;
            }

            long total = subscribers.Sum(s => (long)s.Received);
            if (total != lastTotal)
            {
                lastTotal = total;
                lastProgress = Stopwatch.GetTimestamp();
            }

            if ((publishers.IsCompleted && Stopwatch.GetElapsedTime(lastProgress) > target.Idle)
                || Stopwatch.GetElapsedTime(start) > target.Timeout
                || subscribers.All(s => s.Done || s.Closed))
            {
                await stop.CancelAsync();

                // The last subscriber may have finished since the check above; then the run is complete.
                return subscribers.All(s => s.Done);
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Prints <c>result key=value …</c>; the bench scripts read these lines.</summary>
    public static void Result(params (string Key, object Value)[] fields)
    {
        var line = new StringBuilder("result");
        foreach (var (key, value) in fields)
        {
            line.Append(' ').Append(key).Append('=').Append(value switch
            {
                double d => d.ToString(double.IsFinite(d) && Math.Abs(d) >= 100 ? "F0" : "F3", CultureInfo.InvariantCulture),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString(),
            });
        }

        Console.WriteLine(line.ToString());
    }

    public static double Seconds(long from, long to) => to <= from ? double.NaN : Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    public static double PerSecond(long count, double seconds) => double.IsFinite(seconds) && seconds > 0 ? count / seconds : double.NaN;

    public static double MicrosPer(double cpuSeconds, long count) => count == 0 ? double.NaN : cpuSeconds * 1e6 / count;
}

/// <summary>Registers devices over the REST API (as the operator) and returns their ids and tokens.</summary>
internal static class DeviceRegistration
{
    public static async Task<(string Id, string Token)[]> RegisterAsync(Uri url, string adminKey, string prefix, int count)
    {
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Add("X-Api-Key", adminKey);
        var devices = new (string Id, string Token)[count];
        for (var i = 0; i < count; i++)
        {
            var id = $"{prefix}-{i:D3}";
            using var response = await http.PostAsJsonAsync("/api/v1/devices", new { device_id = id, name = id, type = "sensor" });
            response.EnsureSuccessStatusCode();
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            devices[i] = (id, body.RootElement.GetProperty("token").GetString()!);
        }

        return devices;
    }
}
