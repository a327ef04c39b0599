using System.CommandLine;
using Fieldline.Cli;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Broker;

/// <summary>The TLS options of <c>fieldline serve</c>: a bad one stops the start with one clear line and exit code 2.</summary>
public sealed class MqttTlsConfigurationTests
{
    [Theory]
    [InlineData(new[] { "--mqtt-tls-port=70000" }, "Mqtt:Tls:Port must be between 0 and 65535 (was 70000).")]
    [InlineData(new[] { "--mqtt-tls-port=18443", "--http-port=18443" }, "Mqtt:Tls:Port and Http:Port must differ (both are 18443).")]
    [InlineData(new[] { "--mqtt-tls-port=18443", "--mqtt-port=18443" }, "Mqtt:Tls:Port and Mqtt:Port must differ (both are 18443).")]
    [InlineData(new[] { "--mqtt-tls-cert=/nonexistent/server.pem" }, "Mqtt:Tls:CertificatePath '/nonexistent/server.pem' does not exist.")]
    [InlineData(new[] { "--mqtt-tls-client-ca=/nonexistent/ca.pem" }, "Mqtt:Tls:ClientCaPath '/nonexistent/ca.pem' does not exist.")]
    [InlineData(new[] { "--mqtt-tls-key=/nonexistent/server.key" }, "Mqtt:Tls:KeyPath is set without Mqtt:Tls:CertificatePath.")]
    public async Task Serve_rejects_a_bad_TLS_option_naming_its_key(string[] flags, string message)
    {
        var (exitCode, error) = await ServeAsync(flags);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_rejects_a_certificate_file_that_is_not_a_certificate()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            var certificatePath = Path.Combine(dataDir, "server.pem");
            await File.WriteAllTextAsync(certificatePath, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
            var caPath = Path.Combine(dataDir, "ca.pem");
            await File.WriteAllTextAsync(caPath, "no PEM here\n");

            var (certificateExit, certificateError) = await ServeAsync([$"--mqtt-tls-cert={certificatePath}"], dataDir);
            var (caExit, caError) = await ServeAsync([$"--mqtt-tls-client-ca={caPath}"], dataDir);

            Assert.Equal(2, certificateExit);
            Assert.Contains($"Mqtt:Tls:CertificatePath '{certificatePath}' could not be loaded", certificateError, StringComparison.Ordinal);
            Assert.Equal(2, caExit);
            Assert.Contains($"Mqtt:Tls:ClientCaPath '{caPath}' holds no PEM certificate.", caError, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Error)> ServeAsync(string[] flags, string? dataDir = null)
    {
        var ownDataDir = dataDir is null;
        dataDir ??= TestEnvironment.NewTempDirectory();
        try
        {
            var error = new StringWriter();
            var exitCode = await FieldlineCommandLine.Create()
                .Parse(["serve", "--data-dir", dataDir, "--bind", "127.0.0.1", .. flags])
                .InvokeAsync(new InvocationConfiguration { Output = new StringWriter(), Error = error });
            var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("fieldline: invalid configuration: ", line, StringComparison.Ordinal);
            return (exitCode, line);
        }
        finally
        {
            if (ownDataDir)
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }
}
