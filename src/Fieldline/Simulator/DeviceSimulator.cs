using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Serialization;
using MQTTnet;

namespace Fieldline.Simulator;

/// <summary>
/// <c>fieldline sim</c>: registers simulated devices through the REST API (or takes over existing ones by rotating
/// their tokens), connects each with its own MQTT client or CoAP socket and sends sensor data, showing live progress.
/// </summary>
internal sealed class DeviceSimulator(SimulatorOptions options, TextWriter output)
{
    private const int MaxInflightPerDevice = 16;
    private long _connected;
    private long _sent;
    private long _acknowledged;
    private long _failed;

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = options.ApiUrl, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Add("X-Api-Key", options.AdminKey);

        output.WriteLine($"Registering {options.Devices} devices at {options.ApiUrl} ...");
        var devices = new List<(string Id, string Token)>(options.Devices);
        for (var i = 0; i < options.Devices; i++)
        {
            var id = $"{options.DevicePrefix}-{i:D5}";
            devices.Add((id, await RegisterAsync(http, id, cancellationToken).ConfigureAwait(false)));
        }

        var factory = new MqttClientFactory();
        var links = new ISimulatedDeviceLink[devices.Count];
        try
        {
            output.WriteLine(options.Protocol == SimulatorProtocol.Coap
                ? $"Sending over coap://{options.CoapHost}:{options.CoapPort} ..."
                : $"Connecting to mqtt://{options.MqttHost}:{options.MqttPort} ...");
            var coapServer = options.Protocol == SimulatorProtocol.Coap
                ? new IPEndPoint((await Dns.GetHostAddressesAsync(options.CoapHost, cancellationToken).ConfigureAwait(false)).First(), options.CoapPort)
                : null;
            using (var connectGate = new SemaphoreSlim(50))
            {
                await Task.WhenAll(devices.Select(async (device, index) =>
                {
                    await connectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        links[index] = coapServer is not null
                            ? new CoapDeviceLink(coapServer, device.Token, confirmable: options.Qos == 1)
                            : await MqttDeviceLink.ConnectAsync(factory, options.MqttHost, options.MqttPort, device.Id, device.Token, options.Qos, cancellationToken).ConfigureAwait(false);
                        Interlocked.Increment(ref _connected);
                    }
                    finally
                    {
                        connectGate.Release();
                    }
                })).ConfigureAwait(false);
            }

            var stopwatch = Stopwatch.StartNew();
            using var runCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            runCts.CancelAfter(options.Duration);
            var publishers = devices.Select((device, index) => PublishLoopAsync(links[index], index, runCts.Token)).ToArray();
            var progress = ReportProgressAsync(stopwatch, runCts.Token);
            await Task.WhenAll(publishers).ConfigureAwait(false);
            await progress.ConfigureAwait(false);

            var seconds = stopwatch.Elapsed.TotalSeconds;
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Summary: {_connected} devices connected, {_sent} messages sent, {_acknowledged} acknowledged, {_failed} failed in {seconds:F1} s ({_acknowledged / seconds:F1} msg/s acknowledged)."));
            return _failed == 0 ? 0 : 1;
        }
        finally
        {
            foreach (var link in links.Where(l => l is not null))
            {
                await link.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task<string> RegisterAsync(HttpClient http, string deviceId, CancellationToken cancellationToken)
    {
        var request = new { device_id = deviceId, name = $"Simulated sensor {deviceId}", type = "sensor", model = "fieldline-sim", location = "simulation" };
        using var created = await http.PostAsJsonAsync("/api/v1/devices", request, cancellationToken).ConfigureAwait(false);
        if (created.StatusCode == HttpStatusCode.Conflict)
        {
            // The device exists from an earlier run: its token was shown once, so take a new one.
            using var rotated = await http.PostAsync(new Uri($"/api/v1/devices/{deviceId}/token", UriKind.Relative), null, cancellationToken).ConfigureAwait(false);
            rotated.EnsureSuccessStatusCode();
            return (await rotated.Content.ReadFromJsonAsync<TokenResponse>(cancellationToken).ConfigureAwait(false))!.Token;
        }

        created.EnsureSuccessStatusCode();
        return (await created.Content.ReadFromJsonAsync<TokenResponse>(cancellationToken).ConfigureAwait(false))!.Token;
    }

    private async Task PublishLoopAsync(ISimulatedDeviceLink link, int index, CancellationToken cancellationToken)
    {
        var model = new SensorModel(index);
        var interval = TimeSpan.FromSeconds(1 / options.Rate);
        using var inflight = new SemaphoreSlim(MaxInflightPerDevice);
        var pending = new List<Task>();
        var next = Stopwatch.GetTimestamp();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                }

                next += (long)(interval.TotalSeconds * Stopwatch.Frequency);
                await inflight.WaitAsync(cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _sent);
                pending.Add(PublishOneAsync(link, model.NextPayload(DateTimeOffset.UtcNow), inflight));
                pending.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException)
        {
            // The run's duration is over.
        }

        await Task.WhenAll(pending).ConfigureAwait(false);
    }

    private async Task PublishOneAsync(ISimulatedDeviceLink link, byte[] payload, SemaphoreSlim inflight)
    {
        try
        {
            if (await link.SendTelemetryAsync(payload, CancellationToken.None).ConfigureAwait(false))
            {
                Interlocked.Increment(ref _acknowledged);
            }
            else
            {
                Interlocked.Increment(ref _failed);
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException or TimeoutException)
        {
            Interlocked.Increment(ref _failed);
        }
        finally
        {
            inflight.Release();
        }
    }

    private async Task ReportProgressAsync(Stopwatch stopwatch, CancellationToken cancellationToken)
    {
        var lastAcknowledged = 0L;
        var lastTime = TimeSpan.Zero;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = stopwatch.Elapsed;
                var acknowledged = Interlocked.Read(ref _acknowledged);
                var rate = (acknowledged - lastAcknowledged) / (now - lastTime).TotalSeconds;
                lastAcknowledged = acknowledged;
                lastTime = now;
                output.Write(string.Create(CultureInfo.InvariantCulture, $"\r[{now.TotalSeconds,5:F0}s] connected {_connected}/{options.Devices}  sent {_sent}  acknowledged {acknowledged}  failed {_failed}  rate {rate:F1} msg/s   "));
            }
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
    }

    private sealed record TokenResponse([property: JsonPropertyName("token")] string Token);
}
