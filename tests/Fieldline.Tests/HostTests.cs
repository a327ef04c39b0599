using System.CommandLine;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fieldline.Cli;
using Fieldline.Core.Devices;
using Fieldline.Core.Security;
using Fieldline.Hosting;
using Fieldline.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Fieldline.Tests;

public sealed class HostTests
{
    [Fact]
    public async Task The_host_binds_loopback_ports_chosen_by_the_operating_system()
    {
        await using var env = await TestEnvironment.StartAsync();

        Assert.Equal("127.0.0.1", env.Application.HttpUrl.Host);
        Assert.NotEqual(0, env.Application.HttpUrl.Port);
        Assert.Contains($"HTTP:  http://127.0.0.1:{env.Application.HttpUrl.Port}", env.Banner, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_is_alive_and_ready_lists_each_check()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = env.CreateClient();

        var health = (await anonymous.GetFromJsonAsync<JsonObject>("/health"))!;
        Assert.Equal("alive", (string?)health["status"]);

        var ready = (await anonymous.GetFromJsonAsync<JsonObject>("/ready"))!;
        Assert.True((bool)ready["ready"]!);
        var storage = Assert.Single(ready["checks"]!.AsArray(), c => (string?)c!["name"] == "storage")!;
        Assert.True((bool)storage["ready"]!);
    }

    [Fact]
    public async Task Ready_is_unavailable_while_a_check_is_not_ready()
    {
        var notReady = new StubReadinessCheck();
        await using var env = await TestEnvironment.StartAsync(configureServices: s => s.AddSingleton<IReadinessCheck>(notReady));
        using var anonymous = env.CreateClient();

        using var response = await anonymous.GetAsync("/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.False((bool)body["ready"]!);

        notReady.IsReady = true;
        using var after = await anonymous.GetAsync("/ready");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_device_routes()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = env.CreateClient();

        var document = (await anonymous.GetFromJsonAsync<JsonObject>("/openapi/v1.json"))!;

        Assert.NotNull(document["openapi"]);
        Assert.NotNull(document["paths"]!["/api/v1/devices"]);
        Assert.NotNull(document["paths"]!["/api/v1/devices/{deviceId}/telemetry/{metric}/aggregate"]);
        Assert.NotNull(document["components"]!["securitySchemes"]!["AdminKeyBearer"]);
        Assert.NotNull(document["paths"]!["/api/v1/devices"]!["get"]!["security"]);
        Assert.Null(document["paths"]!["/health"]!["get"]!["security"]);
    }

    [Fact]
    public async Task Metrics_report_devices_by_status_and_type()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("m-1");
        await env.RegisterAsync("m-2");
        await env.RegisterAsync("m-3", "gateway");
        using var anonymous = env.CreateClient();

        using var response = await anonymous.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("# TYPE iot_device_total gauge", text, StringComparison.Ordinal);
        Assert.Contains("iot_device_total{status=\"offline\",type=\"sensor\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("iot_device_total{status=\"offline\",type=\"gateway\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("iot_device_total{status=\"online\",type=\"sensor\"} 0\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("m-1", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_admin_key_is_generated_on_first_start_printed_once_and_kept()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string key;
            await using (var first = await TestEnvironment.StartAsync(adminKey: null, dataDir: dataDir))
            {
                var line = first.Banner.Split('\n').Single(l => l.StartsWith("  Admin API key (shown once, store it now): ", StringComparison.Ordinal));
                key = line.Split(": ")[1].Trim();
                Assert.Equal(43, key.Length);
                Assert.True(first.GetService<IAdminKeyVerifier>().Verify(System.Text.Encoding.UTF8.GetBytes(key)));
                Assert.DoesNotContain(first.Logs.Entries, e => e.Message.Contains(key, StringComparison.Ordinal));
            }

            await using var second = await TestEnvironment.StartAsync(adminKey: null, dataDir: dataDir);
            Assert.DoesNotContain("Admin API key", second.Banner, StringComparison.Ordinal);
            using var client = second.CreateClient(key);
            using var response = await client.GetAsync("/api/v1/devices");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_admin_key_replaces_the_stored_one()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            await using (await TestEnvironment.StartAsync(adminKey: null, dataDir: dataDir))
            {
            }

            await using var env = await TestEnvironment.StartAsync(adminKey: "a-configured-key-of-some-length", dataDir: dataDir);
            Assert.DoesNotContain("Admin API key", env.Banner, StringComparison.Ordinal);
            using var client = env.CreateClient("a-configured-key-of-some-length");
            using var response = await client.GetAsync("/api/v1/devices");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--http-port=-5", "Http:Port must be between 0 and 65535 (was -5).")]
    [InlineData("--mqtt-port=70000", "Mqtt:Port must be between 0 and 65535 (was 70000).")]
    [InlineData("--bind=localhost-ish", "Bind must be an IP address")]
    [InlineData("--admin-key=short", "Security:AdminKey must be 16 to 256 characters without surrounding white space.")]
    [InlineData("--max-connections=-1", "Mqtt:MaximumConnections must be 0 (no limit) or more (was -1).")]
    [InlineData("--max-topic-length=70000", "Mqtt:MaximumTopicLength must be between 0 (MQTT's own 65535) and 65535 bytes (was 70000).")]
    [InlineData("--anonymous-deny-subscribe=a/#/b", "Mqtt:AnonymousDenySubscribe must hold MQTT topic filters ('+' and '#' fill a whole level, '#' only the last one); 'a/#/b' is not one.")]
    [InlineData("--max-keep-alive=70000", "Mqtt:MaximumKeepAliveSeconds")]
    [InlineData("--max-connect-rate=-2", "Mqtt:MaximumConnectRate must be a number of connections per second, 0 for no limit (was -2).")]
    public async Task Serve_rejects_a_bad_value_with_one_clear_line_and_exit_code_2(string flag, string message)
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();

            var exitCode = await FieldlineCommandLine.Create()
                .Parse(["serve", "--data-dir", dataDir, flag])
                .InvokeAsync(new InvocationConfiguration { Output = output, Error = error });

            Assert.Equal(2, exitCode);
            var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("fieldline: invalid configuration: ", line, StringComparison.Ordinal);
            Assert.Contains(message, line, StringComparison.Ordinal);
            Assert.Empty(output.ToString());
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_rejects_a_data_dir_that_is_a_file()
    {
        var file = Path.GetTempFileName();
        try
        {
            var error = new StringWriter();
            var exitCode = await FieldlineCommandLine.Create()
                .Parse(["serve", "--data-dir", file])
                .InvokeAsync(new InvocationConfiguration { Output = new StringWriter(), Error = error });

            Assert.Equal(2, exitCode);
            Assert.Contains("DataDir", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Environment_variables_set_options_and_flags_override_them()
    {
        // Other tests always pass Http:Port as an override, which wins over this variable.
        Environment.SetEnvironmentVariable("FIELDLINE__Http__Port", "18081");
        Environment.SetEnvironmentVariable("FIELDLINE__Telemetry__RetentionDays", "7");
        try
        {
            var fromEnvironment = Bind([]);
            Assert.Equal(18081, fromEnvironment.Http.Port);
            Assert.Equal(7, fromEnvironment.Telemetry.RetentionDays);
            Assert.Equal(1883, fromEnvironment.Mqtt.Port);

            var overridden = Bind(new Dictionary<string, string?> { ["Http:Port"] = "9090" });
            Assert.Equal(9090, overridden.Http.Port);
        }
        finally
        {
            Environment.SetEnvironmentVariable("FIELDLINE__Http__Port", null);
            Environment.SetEnvironmentVariable("FIELDLINE__Telemetry__RetentionDays", null);
        }

        static FieldlineOptions Bind(Dictionary<string, string?> overrides) =>
            FieldlineConfiguration.BindAndValidate(new ConfigurationBuilder()
                .AddFieldlineSources(AppContext.BaseDirectory, overrides.Append(new("DataDir", Path.GetTempPath())))
                .Build());
    }

    [Fact]
    public void A_port_that_is_not_a_number_is_a_configuration_error()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Http:Port"] = "eighty", ["DataDir"] = Path.GetTempPath() })
            .Build();

        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => FieldlineConfiguration.BindAndValidate(configuration));
        Assert.Contains("Http:Port", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_changes_from_connections_show_in_the_history()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("c-1");
        await env.GetService<IDeviceRegistry>().SetConnectionStatusAsync("c-1", DeviceStatus.Online, DateTimeOffset.UtcNow, default);

        var history = (await env.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/c-1/status-history?limit=1"))!;

        Assert.Equal("online", (string?)Assert.Single(history)!["status"]);
    }

    private sealed class StubReadinessCheck : IReadinessCheck
    {
        public string Name => "stub";

        public bool IsReady { get; set; }
    }
}
