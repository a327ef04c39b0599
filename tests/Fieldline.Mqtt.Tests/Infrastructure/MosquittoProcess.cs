using System.Diagnostics;
using System.Text;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>A mosquitto_pub or mosquitto_sub process whose output is recorded.</summary>
public sealed class MosquittoProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private MosquittoProcess(Process process) => _process = process;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public static MosquittoProcess Start(string tool, params string[] arguments)
    {
        var info = new ProcessStartInfo($"/usr/bin/{tool}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = info };
        var result = new MosquittoProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (result._stdout)
                {
                    result._stdout.Append(e.Data).Append('\n');
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (result._stderr)
                {
                    result._stderr.Append(e.Data).Append('\n');
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Waits for the process to exit by itself and checks its exit code.</summary>
    public async Task WaitForSuccessAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{_process.StartInfo.FileName} did not exit. stdout: {Stdout} stderr: {_stderr}");
        }

        _process.WaitForExit();
        Assert.True(_process.ExitCode == 0, $"{_process.StartInfo.FileName} {string.Join(' ', _process.StartInfo.ArgumentList)} exited with {_process.ExitCode}. stdout: {Stdout} stderr: {_stderr}");
    }

    /// <summary>Kills the process: its TCP connection ends without DISCONNECT.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.Dispose();
    }
}
