using Fieldline.Core.Telemetry;
using Fieldline.Mqtt.Server;
using Fieldline.Storage.Sqlite;

namespace Fieldline.Hosting;

/// <summary>
/// Opens the registry and the telemetry store, and loads the broker's persistent sessions and retained
/// messages, before anything else starts; on stop flushes what is still buffered. Registered as the first hosted service: the host stops services in reverse order and the
/// web server (with the broker listener) before all of them, so nothing writes after the flush.
/// </summary>
internal sealed partial class StorageLifetime(
    SqliteRegistryDatabase registry,
    ITelemetryStore telemetry,
    TelemetryPipeline pipeline,
    MqttBroker broker,
    ILogger<StorageLifetime> logger) : IHostedService, IReadinessCheck
{
    private volatile bool _ready;

    public string Name => "storage";

    public bool IsReady => _ready;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await registry.InitializeAsync(cancellationToken);
        await telemetry.OpenAsync(cancellationToken);
        await broker.StartAsync(cancellationToken);
        _ready = true;
        LogStorageOpened(logger, registry.FilePath);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _ready = false;
        await pipeline.FlushAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage opened ({RegistryPath})")]
    private static partial void LogStorageOpened(ILogger logger, string registryPath);
}
