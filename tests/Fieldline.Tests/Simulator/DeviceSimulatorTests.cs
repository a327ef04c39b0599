using Fieldline.Simulator;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Simulator;

public sealed class DeviceSimulatorTests
{
    [Fact]
    public async Task The_simulator_registers_its_devices_publishes_and_on_a_second_run_reuses_them()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var options = new SimulatorOptions
        {
            Devices = 3,
            Rate = 10,
            Duration = TimeSpan.FromSeconds(1.5),
            ApiUrl = environment.Application.HttpUrl,
            AdminKey = TestEnvironment.AdminKey,
            MqttHost = "127.0.0.1",
            MqttPort = environment.Application.MqttPort!.Value,
            DevicePrefix = "simtest",
        };

        for (var run = 1; run <= 2; run++)
        {
            var output = new StringWriter();
            var exitCode = await new DeviceSimulator(options, output).RunAsync(CancellationToken.None);

            var text = output.ToString();
            Assert.True(exitCode == 0, $"run {run}: expected exit code 0, saw {exitCode}; output: {text}");
            Assert.Contains("3 devices connected", text, StringComparison.Ordinal);
            Assert.Contains(" 0 failed", text, StringComparison.Ordinal);
        }

        foreach (var device in new[] { "simtest-00000", "simtest-00001", "simtest-00002" })
        {
            var latest = await environment.Telemetry.GetLatestAsync(device, CancellationToken.None);
            Assert.Equal(["humidity", "temperature", "vibration"], latest.Select(l => l.Metric).Order());
        }
    }

    [Fact]
    public async Task The_simulator_sends_over_coap_and_every_request_is_acknowledged_after_the_write()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var output = new StringWriter();
        var exitCode = await Fieldline.Cli.FieldlineCommandLine.Create().Parse(
            [
                "sim", "--protocol", "coap", "--devices", "3", "--rate", "10", "--duration", "1.5",
                "--url", environment.Application.HttpUrl.ToString(), "--admin-key", TestEnvironment.AdminKey,
                "--coap-port", environment.Application.CoapPort!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), "--prefix", "coapsim",
            ]).InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = output });

        var text = output.ToString();
        Assert.True(exitCode == 0, $"expected exit code 0, saw {exitCode}; output: {text}");
        Assert.Contains("coap://127.0.0.1:", text, StringComparison.Ordinal);
        Assert.Contains(" 0 failed", text, StringComparison.Ordinal);
        foreach (var device in new[] { "coapsim-00000", "coapsim-00001", "coapsim-00002" })
        {
            var latest = await environment.Telemetry.GetLatestAsync(device, CancellationToken.None);
            Assert.Equal(["humidity", "temperature", "vibration"], latest.Select(l => l.Metric).Order());
        }
    }
}
