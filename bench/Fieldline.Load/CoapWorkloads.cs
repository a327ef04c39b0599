using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Fieldline.Coap.Client;
using Fieldline.Coap.Protocol;

namespace Fieldline.Load;

/// <summary>
/// <c>fieldline-load coap</c>: <c>--clients</c> CoAP clients, each with its own UDP socket, each sending Confirmable
/// requests one after the other (the next when the answer came) for <c>--seconds</c>. Against Fieldline
/// (<c>--url</c> and <c>--admin-key</c> given) each client is a registered device POSTing telemetry with
/// <c>--values</c> metrics to <c>/api/v1/{token}/telemetry</c>, each 2.04 after the durable write; otherwise every
/// client GETs <c>--path</c> (libcoap's coap-server's <c>time</c>, the reference). Prints requests/s, p50/p99 and the
/// server's CPU per request.
/// </summary>
internal static class CoapRequests
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var port = int.Parse(Opt.Get(o, "coap-port"), CultureInfo.InvariantCulture);
        var clients = int.Parse(Opt.Get(o, "clients", "100"), CultureInfo.InvariantCulture);
        var seconds = double.Parse(Opt.Get(o, "seconds", "10"), CultureInfo.InvariantCulture);
        var warmup = double.Parse(Opt.Get(o, "warmup", "2"), CultureInfo.InvariantCulture);
        var values = int.Parse(Opt.Get(o, "values", "5"), CultureInfo.InvariantCulture);
        var serverPid = int.Parse(Opt.Get(o, "server-pid", "0"), CultureInfo.InvariantCulture);
        var clockTicks = int.Parse(Opt.Get(o, "clk-tck", "100"), CultureInfo.InvariantCulture);
        var name = Opt.Get(o, "name", "server");
        var server = new IPEndPoint(IPAddress.Loopback, port);

        string[] paths;
        string workload;
        if (o.TryGetValue("url", out var url))
        {
            var devices = await DeviceRegistration.RegisterAsync(new Uri(url), Opt.Get(o, "admin-key"), Opt.Get(o, "prefix", "coap-bench"), clients);
            paths = [.. devices.Select(d => $"api/v1/{d.Token}/telemetry")];
            workload = "telemetry_post";
        }
        else
        {
            paths = [.. Enumerable.Repeat(Opt.Get(o, "path", "time"), clients)];
            workload = "get";
        }

        var counting = 0; // 0 warm-up, 1 measuring, 2 over
        var latencies = new List<long>[clients];
        var failures = 0L;
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 3_600_000;
        async Task ClientAsync(int index)
        {
            await using var client = new CoapClient(server);
            var mine = latencies[index] = new List<long>(100_000);
            var sequence = 0L;
            while (Volatile.Read(ref counting) < 2)
            {
                byte[]? payload = null;
                if (workload == "telemetry_post")
                {
                    // A distinct timestamp per message, so that every point is kept (none replaces another).
                    var body = new StringBuilder().Append("{\"ts\":").Append(timestamp + (sequence++ * clients) + index).Append(",\"values\":{");
                    for (var v = 0; v < values; v++)
                    {
                        body.Append(v == 0 ? "" : ",").Append("\"m").Append(v).Append("\":").Append(sequence % 100);
                    }

                    payload = Encoding.UTF8.GetBytes(body.Append("}}").ToString());
                }

                var started = Stopwatch.GetTimestamp();
                var response = await client.SendAsync(workload == "get" ? CoapCode.Get : CoapCode.Post, paths[index], payload, payload is null ? null : 50);
                var elapsed = Stopwatch.GetTimestamp() - started;
                if (Volatile.Read(ref counting) != 1)
                {
                    continue;
                }

                if (response.Code.Class == 2)
                {
                    mine.Add(elapsed);
                }
                else
                {
                    Interlocked.Increment(ref failures);
                }
            }
        }

        var running = Enumerable.Range(0, clients).Select(i => Task.Run(() => ClientAsync(i))).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(warmup));
        var cpu = CpuSample.Take(serverPid);
        var start = Stopwatch.GetTimestamp();
        Volatile.Write(ref counting, 1);
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref counting, 2);
        var end = Stopwatch.GetTimestamp();
        var (serverCpu, loadCpu) = CpuSample.Since(cpu, serverPid, clockTicks);
        await Task.WhenAll(running);

        var all = latencies.SelectMany(l => l).ToList();
        var elapsedSeconds = RunControl.Seconds(start, end);
        var (p50, p99, max) = DeviceFleet.Percentiles(all);
        RunControl.Result(
            ("workload", workload), ("server", name), ("clients", clients), ("requests", all.Count), ("failed", failures),
            ("per_s", RunControl.PerSecond(all.Count, elapsedSeconds)),
            ("points_per_s", workload == "telemetry_post" ? RunControl.PerSecond(all.Count * (long)values, elapsedSeconds) : 0.0),
            ("p50_ms", p50), ("p99_ms", p99), ("max_ms", max),
            ("server_us_per_req", RunControl.MicrosPer(serverCpu, all.Count)), ("load_us_per_req", RunControl.MicrosPer(loadCpu, all.Count)));
        return failures == 0 ? 0 : 1;
    }
}
