using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fieldline.Core.Telemetry;
using Fieldline.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Sdk;

namespace Fieldline.Tests.Infrastructure;

/// <summary>
/// Starts the real host in-process on 127.0.0.1 with OS-assigned ports and a temporary data directory,
/// talks to it over real sockets, and fails the test on dispose if the server logged an error.
/// </summary>
internal sealed class TestEnvironment : IAsyncDisposable
{
    public const string AdminKey = "test-admin-key-0123456789abcdef";

    private readonly bool _ownsDataDir;

    private TestEnvironment(FieldlineApplication application, RecordingLoggerProvider logs, string dataDir, bool ownsDataDir, string banner)
    {
        Application = application;
        Logs = logs;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
        Banner = banner;
        Client = CreateClient(AdminKey);
    }

    public FieldlineApplication Application { get; }

    public RecordingLoggerProvider Logs { get; }

    /// <summary>The real telemetry store of the host (SQLite in the temporary data directory).</summary>
    public ITelemetryStore Telemetry => GetService<ITelemetryStore>();

    public string DataDir { get; }

    /// <summary>What the host printed at start.</summary>
    public string Banner { get; }

    /// <summary>A client sending <see cref="AdminKey"/> as a bearer token.</summary>
    public HttpClient Client { get; }

    /// <param name="adminKey">The configured admin key; null to let the host load or generate one.</param>
    /// <param name="dataDir">An existing data directory to reuse (kept on dispose); null for a fresh temporary one.</param>
    /// <param name="configuration">More configuration overrides, e.g. <c>Telemetry:RetentionDays</c>.</param>
    /// <param name="configureServices">Adds or replaces services after the host's own registrations.</param>
    public static async Task<TestEnvironment> StartAsync(string? adminKey = AdminKey, string? dataDir = null, IDictionary<string, string?>? configuration = null, Action<IServiceCollection>? configureServices = null)
    {
        var ownsDataDir = dataDir is null;
        dataDir ??= NewTempDirectory();
        var overrides = new Dictionary<string, string?>
        {
            ["DataDir"] = dataDir,
            ["Bind"] = "127.0.0.1",
            ["Http:Port"] = "0",
            ["Mqtt:Port"] = "0",
            ["Mqtt:Tls:Port"] = "0",
            ["Coap:Port"] = "0",
            ["Security:AdminKey"] = adminKey ?? string.Empty,

            // Tests write points with fixed timestamps from 2025; keep them past the default retention of 30 days.
            ["Telemetry:RetentionDays"] = "3650",
        };
        foreach (var (key, value) in configuration ?? new Dictionary<string, string?>())
        {
            overrides[key] = value;
        }

        var logs = new RecordingLoggerProvider();
        var banner = new StringWriter();
        var application = await FieldlineApplication.StartAsync(
            new FieldlineStartup
            {
                ConfigurationOverrides = overrides,
                Output = banner,
                ConfigureBuilder = builder =>
                {
                    builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
                    configureServices?.Invoke(builder.Services);
                },
            },
            CancellationToken.None);
        return new TestEnvironment(application, logs, dataDir, ownsDataDir, banner.ToString());
    }

    public static string NewTempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "fieldline-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    public HttpClient CreateClient(string? bearerKey = null)
    {
        var client = new HttpClient { BaseAddress = Application.HttpUrl };
        if (bearerKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearerKey);
        }

        return client;
    }

    public T GetService<T>()
        where T : notnull => Application.Services.GetRequiredService<T>();

    /// <summary>Registers a sensor through the API and returns the response body.</summary>
    public async Task<JsonObject> RegisterAsync(string deviceId, string type = "sensor")
    {
        using var response = await Client.PostAsJsonAsync("/api/v1/devices", new { device_id = deviceId, name = "Device " + deviceId, type });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    /// <summary>Creates a service account through the API (password generated unless given) and returns the response body.</summary>
    public async Task<JsonObject> CreateServiceAccountAsync(string username, IEnumerable<(string Action, string Pattern)> rules, string? password = null)
    {
        var body = new JsonObject
        {
            ["username"] = username,
            ["rules"] = new JsonArray([.. rules.Select(r => (JsonNode)new JsonObject { ["action"] = r.Action, ["pattern"] = r.Pattern })]),
        };
        if (password is not null)
        {
            body["password"] = password;
        }

        using var response = await Client.PostAsJsonAsync("/api/v1/service-accounts", body);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    /// <summary>The /metrics text.</summary>
    public Task<string> ScrapeMetricsAsync() => Client.GetStringAsync("/metrics");

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Application.DisposeAsync();
        if (_ownsDataDir)
        {
            Directory.Delete(DataDir, recursive: true);
        }

        var errors = Logs.Entries.Where(e => e.Level >= LogLevel.Error && !Logs.IsExpected(e)).ToList();
        if (errors.Count > 0)
        {
            throw new XunitException("The server logged errors:" + Environment.NewLine + string.Join(Environment.NewLine, errors));
        }
    }
}
