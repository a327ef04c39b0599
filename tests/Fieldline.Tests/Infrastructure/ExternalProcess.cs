using System.Diagnostics;
using Xunit.Sdk;

namespace Fieldline.Tests.Infrastructure;

/// <summary>Runs a program that others wrote (mosquitto_pub, mosquitto_sub) and collects what it printed.</summary>
internal static class ExternalProcess
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}, stdout '{Output.Trim()}', stderr '{Error.Trim()}'";
    }

    public static async Task<Result> RunAsync(string fileName, IEnumerable<string> arguments, string? standardInput = null, TimeSpan? timeout = null)
    {
        using var process = Start(fileName, arguments, standardInput is not null);
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new XunitException($"{fileName} {string.Join(' ', arguments)} did not exit in time; it printed '{await output}' '{await error}'.");
        }

        return new Result(process.ExitCode, await output, await error);
    }

    public static Process Start(string fileName, IEnumerable<string> arguments, bool redirectInput = false)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return Process.Start(info) ?? throw new XunitException($"Could not start {fileName}.");
    }
}
