using System.CommandLine;

namespace Fieldline.Cli;

/// <summary>The <c>fieldline</c> command line. Each sub-command lives in its own class; add new ones here.</summary>
internal static class FieldlineCommandLine
{
    /// <summary>Exit code for a configuration the process cannot run with.</summary>
    public const int InvalidConfigurationExitCode = 2;

    /// <summary>Exit code for a start that failed for another reason (port in use, storage error).</summary>
    public const int StartFailedExitCode = 1;

    public static RootCommand Create()
    {
        var root = new RootCommand("Fieldline: an IoT platform that registers devices, runs an MQTT broker and stores their telemetry.");
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(SimCommand.Create());
        return root;
    }
}
