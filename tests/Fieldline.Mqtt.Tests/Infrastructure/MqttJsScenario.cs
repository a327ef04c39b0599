using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Xunit.Sdk;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>What one run of scenarios.mjs printed: its JSON result line, its exit code and its standard error.</summary>
public sealed record MqttJsResult(int ExitCode, JsonElement Json, string Stdout, string Stderr)
{
    /// <summary>Everything a failure message needs to explain the run.</summary>
    public string Describe() => $"node exited with {ExitCode}.\nstdout:\n{Stdout}\nstderr:\n{Stderr}";

    public JsonElement this[string property] =>
        Json.TryGetProperty(property, out var value) ? value : throw new XunitException($"The result has no \"{property}\". {Describe()}");
}

/// <summary>
/// Runs tests/Fieldline.Mqtt.Tests/Interop/mqttjs/scenarios.mjs with Node.js: MQTT.js, a client others wrote, against
/// the broker. The script's dependencies are installed by build/test.sh (npm ci in that directory).
/// </summary>
public static class MqttJsScenario
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs one scenario against 127.0.0.1:<paramref name="port"/>, or against <paramref name="url"/> when given
    /// (<c>ws://…/mqtt</c> for MQTT over WebSocket). A line the script prints with a "pause" property is handed to
    /// <paramref name="onPause"/>, after which the script is told to resume.
    /// </summary>
    public static async Task<MqttJsResult> RunAsync(int port, string scenario, Func<JsonElement, Task>? onPause = null, Uri? url = null)
    {
        var node = FindNode();
        var directory = ScriptDirectory();
        var info = new ProcessStartInfo(node)
        {
            WorkingDirectory = directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(Path.Combine(directory, "scenarios.mjs"));
        info.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(scenario);
        if (url is not null)
        {
            info.Environment["MQTTJS_URL"] = url.ToString();
        }

        using var process = Process.Start(info) ?? throw new XunitException($"{node} did not start.");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = new StringBuilder();
        JsonElement? result = null;
        using var timeout = new CancellationTokenSource(RunTimeout);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                stdout.Append(line).Append('\n');
                if (!line.StartsWith('{'))
                {
                    continue;
                }

                using var document = JsonDocument.Parse(line);
                var json = document.RootElement.Clone();
                if (json.TryGetProperty("pause", out _))
                {
                    if (onPause is null)
                    {
                        throw new XunitException($"The script paused but the test expected no pause: {line}");
                    }

                    await onPause(json);
                    await process.StandardInput.WriteLineAsync("resume");
                    await process.StandardInput.FlushAsync(timeout.Token);
                }
                else if (json.TryGetProperty("scenario", out _))
                {
                    result = json;
                }
            }

            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new XunitException($"node scenarios.mjs {port} {scenario} did not finish within {RunTimeout.TotalSeconds} s.\nstdout:\n{stdout}\nstderr:\n{await stderr}");
        }
        finally
        {
            // A failed assertion in onPause or an unreadable line must not leave node running.
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        var run = new MqttJsResult(process.ExitCode, result ?? default, stdout.ToString(), await stderr);
        if (result is null)
        {
            throw new XunitException($"node scenarios.mjs {port} {scenario} printed no result line. {run.Describe()}");
        }

        return run;
    }

    /// <summary>The script directory in the source tree, with its node_modules installed.</summary>
    private static string ScriptDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "tests", "Fieldline.Mqtt.Tests", "Interop", "mqttjs");
            if (File.Exists(Path.Combine(directory.FullName, "Fieldline.sln")) && File.Exists(Path.Combine(candidate, "scenarios.mjs")))
            {
                if (!File.Exists(Path.Combine(candidate, "node_modules", "mqtt", "package.json")))
                {
                    throw new XunitException($"MQTT.js is not installed in {candidate}: run `npm ci` there (build/test.sh does).");
                }

                return candidate;
            }
        }

        throw new XunitException($"tests/Fieldline.Mqtt.Tests/Interop/mqttjs/scenarios.mjs was not found in a source tree above {AppContext.BaseDirectory}.");
    }

    private static string FindNode()
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, "node");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new XunitException("Node.js (node) was not found on PATH; the MQTT.js interoperability tests need it. build/test.sh installs it: apt-get install -y nodejs npm.");
    }
}
