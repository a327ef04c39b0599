using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Sdk;

namespace Fieldline.Tests.Infrastructure;

/// <summary>
/// The real <c>fieldline serve</c> as a separate process, for what an in-process host cannot show: kill -9 and
/// restart. Ports come from the OS; they are read from the banner the process prints.
/// </summary>
internal sealed partial class FieldlineProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    private FieldlineProcess(Process process, Uri httpUrl, int mqttPort, int coapPort, IEnumerable<string> seen)
    {
        _process = process;
        HttpUrl = httpUrl;
        MqttPort = mqttPort;
        CoapPort = coapPort;
        _output.AppendJoin('\n', seen).Append('\n');
    }

    public Uri HttpUrl { get; }

    public int MqttPort { get; }

    /// <summary>The UDP port of CoAP.</summary>
    public int CoapPort { get; }

    /// <summary>What the process printed on standard output so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<FieldlineProcess> StartAsync(string dataDir, string adminKey, params string[] moreArguments)
    {
        var host = HostAssemblyPath();
        var process = ExternalProcess.Start("dotnet", [host, "serve", "--data-dir", dataDir, "--http-port", "0", "--mqtt-port", "0", "--mqtt-tls-port", "0", "--coap-port", "0", "--bind", "127.0.0.1", "--admin-key", adminKey, .. moreArguments]);
        Uri? http = null;
        int? mqtt = null;
        int? coap = null;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = new List<string>();
        while (http is null || mqtt is null || coap is null)
        {
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                var error = await process.StandardError.ReadToEndAsync(timeout.Token);
                throw new XunitException($"fieldline exited before printing its addresses; stdout: {string.Join(" | ", seen)}; stderr: {error}");
            }

            seen.Add(line);
            if (HttpLine().Match(line) is { Success: true } h)
            {
                http = new Uri(h.Groups[1].Value);
            }
            else if (MqttLine().Match(line) is { Success: true } m)
            {
                mqtt = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (CoapLine().Match(line) is { Success: true } c)
            {
                coap = int.Parse(c.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        // Keep draining output so that the process never blocks on a full pipe.
        var started = new FieldlineProcess(process, http, mqtt.Value, coap.Value, seen);
        _ = started.RecordOutputAsync();
        _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
        return started;
    }

    private async Task RecordOutputAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync() is { } line)
        {
            lock (_output)
            {
                _output.Append(line).Append('\n');
            }
        }
    }

    /// <summary>SIGKILL: no shutdown hook runs, nothing is flushed.</summary>
    public void KillHard()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            KillHard();
        }

        _process.Dispose();
    }

    /// <summary>The host's build output next to this test assembly's configuration (Debug or Release).</summary>
    private static string HostAssemblyPath()
    {
        var testDirectory = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = testDirectory.Parent!.Name;
        var framework = testDirectory.Name;
        for (var directory = testDirectory; directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "src", "Fieldline", "bin", configuration, framework, "fieldline.dll");
            if (File.Exists(Path.Combine(directory.FullName, "Fieldline.sln")) && File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new XunitException($"The host's fieldline.dll for {configuration}/{framework} was not found above {AppContext.BaseDirectory}; build the solution first.");
    }

    [GeneratedRegex(@"HTTP:\s+(http://\S+)")]
    private static partial Regex HttpLine();

    [GeneratedRegex(@"MQTT:\s+mqtt://[^:\s]+:(\d+)")]
    private static partial Regex MqttLine();

    [GeneratedRegex(@"CoAP:\s+coap://[^:\s]+:(\d+)")]
    private static partial Regex CoapLine();
}
