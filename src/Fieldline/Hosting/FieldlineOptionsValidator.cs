using System.Net;
using System.Text;
using Fieldline.Core;
using Fieldline.Core.Devices;
using Fieldline.Core.ServiceAccounts;
using Fieldline.Mqtt.Server;
using Microsoft.Extensions.Options;

namespace Fieldline.Hosting;

/// <summary>
/// Rejects a configuration the process cannot run with, each failure one line naming the configuration key,
/// so that a typo in an environment variable fails the start instead of a later request.
/// </summary>
internal sealed class FieldlineOptionsValidator : IValidateOptions<FieldlineOptions>
{
    /// <summary>A generated key is 43 characters; shorter configured keys would be guessable.</summary>
    internal const int MinimumAdminKeyLength = 16;

    public ValidateOptionsResult Validate(string? name, FieldlineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        ValidatePort(failures, "Http:Port", options.Http.Port);
        ValidatePort(failures, "Mqtt:Port", options.Mqtt.Port);
        if (options.Http.Port != 0 && options.Http.Port == options.Mqtt.Port)
        {
            failures.Add($"Http:Port and Mqtt:Port must differ (both are {options.Http.Port}).");
        }

        ValidateTls(failures, options);
        ValidatePort(failures, "Coap:Port", options.Coap.Port);
        if (options.Coap.IdleTimeoutSeconds is < 1 or > 86_400)
        {
            failures.Add($"Coap:IdleTimeoutSeconds must be between 1 and 86400 (was {options.Coap.IdleTimeoutSeconds}).");
        }

        foreach (var type in options.Shadows.TelemetryToReported.Where(t => !WireNames.TryParse<DeviceType>(t, out _)))
        {
            failures.Add($"Shadows:TelemetryToReported must hold device types ({WireNames.Choices<DeviceType>()}); '{type}' is not one.");
        }

        ValidateFilters(failures, "Mqtt:AnonymousDenyPublish", options.Mqtt.AnonymousDenyPublish);
        ValidateFilters(failures, "Mqtt:AnonymousDenySubscribe", options.Mqtt.AnonymousDenySubscribe);
        if (!IPAddress.TryParse(options.Bind, out _))
        {
            failures.Add($"Bind must be an IP address such as 0.0.0.0 or 127.0.0.1 (was '{options.Bind}').");
        }

        if (options.Security.AdminKey is { Length: > 0 } adminKey
            && (adminKey.Length is < MinimumAdminKeyLength or > 256 || adminKey.Trim().Length != adminKey.Length))
        {
            // Presented keys are trimmed and limited to 256 characters, so a configured key outside that could never match.
            failures.Add($"Security:AdminKey must be {MinimumAdminKeyLength} to 256 characters without surrounding white space.");
        }

        if (options.Events.DataReceivedWindowSeconds is < 1 or > 86_400)
        {
            failures.Add($"Events:DataReceivedWindowSeconds must be between 1 and 86400 (was {options.Events.DataReceivedWindowSeconds}).");
        }

        if (options.Telemetry.RetentionDays is < 1 or > 36_500)
        {
            failures.Add($"Telemetry:RetentionDays must be between 1 and 36500 (was {options.Telemetry.RetentionDays}).");
        }

        if (CheckDataDir(options.DataDir) is { } dataDirFailure)
        {
            failures.Add(dataDirFailure);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateTls(List<string> failures, FieldlineOptions options)
    {
        var tls = options.Mqtt.Tls;
        if (!tls.Enabled)
        {
            return;
        }

        ValidatePort(failures, "Mqtt:Tls:Port", tls.Port);
        if (tls.Port != 0 && (tls.Port == options.Http.Port || tls.Port == options.Mqtt.Port))
        {
            var other = tls.Port == options.Http.Port ? "Http:Port" : "Mqtt:Port";
            failures.Add($"Mqtt:Tls:Port and {other} must differ (both are {tls.Port}).");
        }

        if (!string.IsNullOrEmpty(tls.KeyPath) && string.IsNullOrEmpty(tls.CertificatePath))
        {
            failures.Add("Mqtt:Tls:KeyPath is set without Mqtt:Tls:CertificatePath.");
        }

        CheckFileExists(failures, "Mqtt:Tls:CertificatePath", tls.CertificatePath);
        CheckFileExists(failures, "Mqtt:Tls:KeyPath", tls.KeyPath);
        CheckFileExists(failures, "Mqtt:Tls:ClientCaPath", tls.ClientCaPath);
    }

    private static void CheckFileExists(List<string> failures, string key, string? path)
    {
        if (!string.IsNullOrEmpty(path) && !File.Exists(path))
        {
            failures.Add($"{key} '{path}' does not exist.");
        }
    }

    /// <summary>The broker's limits, bound from the <c>Mqtt</c> section; one line per bad value.</summary>
    public static IReadOnlyList<string> ValidateBroker(MqttBrokerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        ValidateLimit(failures, "Mqtt:MaximumConnections", options.MaximumConnections);
        ValidateLimit(failures, "Mqtt:MaximumConnectionsPerAddress", options.MaximumConnectionsPerAddress);
        ValidateLimit(failures, "Mqtt:MaximumSubscriptionsPerClient", options.MaximumSubscriptionsPerClient);
        ValidateLimit(failures, "Mqtt:MaximumTopicLevels", options.MaximumTopicLevels);
        if (options.MaximumTopicLength is < 0 or > 65_535)
        {
            failures.Add($"Mqtt:MaximumTopicLength must be between 0 (MQTT's own 65535) and 65535 bytes (was {options.MaximumTopicLength}).");
        }

        if (!double.IsFinite(options.MaximumConnectRate) || options.MaximumConnectRate < 0)
        {
            failures.Add($"Mqtt:MaximumConnectRate must be a number of connections per second, 0 for no limit (was {options.MaximumConnectRate}).");
        }

        if (options.ConnectRateBurst < 1)
        {
            failures.Add($"Mqtt:ConnectRateBurst must be at least 1 (was {options.ConnectRateBurst}).");
        }

        return failures;
    }

    private static void ValidateLimit(List<string> failures, string key, int value)
    {
        if (value < 0)
        {
            failures.Add($"{key} must be 0 (no limit) or more (was {value}).");
        }
    }

    private static void ValidateFilters(List<string> failures, string key, string[] filters)
    {
        foreach (var filter in filters)
        {
            if (string.IsNullOrEmpty(filter) || !TopicPatterns.IsValidFilter(Encoding.UTF8.GetBytes(filter)))
            {
                failures.Add($"{key} must hold MQTT topic filters ('+' and '#' fill a whole level, '#' only the last one); '{filter}' is not one.");
            }
        }
    }

    private static void ValidatePort(List<string> failures, string key, int port)
    {
        if (port is < 0 or > 65_535)
        {
            failures.Add($"{key} must be between 0 and 65535 (was {port}).");
        }
    }

    /// <summary>Creates the directory and writes a probe file: the only reliable test that the process can write there.</summary>
    private static string? CheckDataDir(string dataDir)
    {
        if (string.IsNullOrWhiteSpace(dataDir))
        {
            return "DataDir must not be empty.";
        }

        try
        {
            var directory = Directory.CreateDirectory(Path.GetFullPath(dataDir));
            var probe = Path.Combine(directory.FullName, $".write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return $"DataDir '{dataDir}' is not a writable directory: {e.Message}";
        }
    }
}
