using Fieldline.Core.Telemetry;
using Fieldline.Mqtt.Server;
using Fieldline.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>When the store falls behind, the broker stops reading from the device instead of buffering or dropping.</summary>
public sealed class StoreBackpressureTests
{
    [Fact]
    public async Task A_stalled_store_stops_the_broker_reading_and_nothing_is_lost_when_it_resumes()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var environment = await TestEnvironment.StartAsync(
            configuration: new Dictionary<string, string?> { ["Mqtt:ReceiveMaximum"] = "16" },
            configureServices: services =>
            {
                // The real SQLite store, behind a gate that holds every append until the test opens it.
                var registration = services.Last(s => s.ServiceType == typeof(ITelemetryStore));
                services.Replace(ServiceDescriptor.Singleton<ITelemetryStore>(sp => new GatedStore((ITelemetryStore)registration.ImplementationFactory!(sp), gate.Task)));
            });
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        using var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        var broker = environment.GetService<MqttBroker>();
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        const int messages = 500;
        var publishes = Enumerable.Range(0, messages).Select(i => client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("sensor/dev-1/telemetry")
            .WithPayload($"{{\"ts\":{start + i},\"values\":{{\"n\":{i}}}}}")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build())).ToArray();

        // The broker reads up to its receive window (16) and then stops: it neither buffers nor acknowledges more.
        await Poll.UntilAsync(() => Task.FromResult(broker.MessagesReceived), n => n >= 16, "the receive window to fill");
        var receivedWhileStalled = broker.MessagesReceived;
        Assert.True(receivedWhileStalled <= 17, $"Expected the broker to stop reading at its receive window of 16, but it read {receivedWhileStalled} messages.");
        Assert.DoesNotContain(publishes, p => p.IsCompleted);

        gate.SetResult();
        var results = await Task.WhenAll(publishes).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.All(results, r => Assert.Equal(MqttClientPublishReasonCode.Success, r.ReasonCode));
        var latest = await environment.Telemetry.QueryRawAsync("dev-1", "n", start, start + messages, 1000, null, default);
        Assert.Equal(messages, latest.Points.Count);
    }

    [Fact]
    public async Task Stopping_the_server_writes_every_point_it_had_accepted_before_it_exits()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dataDir = TestEnvironment.NewTempDirectory();
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        const int messages = 300;
        try
        {
            var environment = await TestEnvironment.StartAsync(
                dataDir: dataDir,
                configureServices: services =>
                {
                    var registration = services.Last(s => s.ServiceType == typeof(ITelemetryStore));
                    services.Replace(ServiceDescriptor.Singleton<ITelemetryStore>(sp => new GatedStore((ITelemetryStore)registration.ImplementationFactory!(sp), gate.Task)));
                });
            var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
            using (var client = new MqttClientFactory().CreateMqttClient())
            {
                await client.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
                for (var i = 0; i < messages; i++)
                {
                    // QoS 0: no acknowledgement to wait for; the points sit in the pipeline behind the stalled store.
                    await client.PublishAsync(new MqttApplicationMessageBuilder()
                        .WithTopic("sensor/dev-1/telemetry")
                        .WithPayload($"{{\"ts\":{start + i},\"values\":{{\"n\":{i}}}}}")
                        .Build());
                }

                var broker = environment.GetService<MqttBroker>();
                await Poll.UntilAsync(() => Task.FromResult(broker.MessagesReceived), n => n >= messages, $"{messages} messages accepted by the broker");
            }

            // A graceful stop (as on SIGTERM) must flush the pipeline before the store closes.
            var stopping = environment.DisposeAsync().AsTask();
            gate.SetResult();
            await stopping.WaitAsync(TimeSpan.FromSeconds(30));

            await using var restarted = await TestEnvironment.StartAsync(dataDir: dataDir);
            var page = await restarted.Telemetry.QueryRawAsync("dev-1", "n", start, start + messages, 1000, null, default);
            Assert.Equal(messages, page.Points.Count);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>Holds appends until the gate opens, as a store that has fallen behind would.</summary>
    private sealed class GatedStore(ITelemetryStore inner, Task gate) : ITelemetryStore
    {
        public long SizeBytes => inner.SizeBytes;

        public Task OpenAsync(CancellationToken cancellationToken) => inner.OpenAsync(cancellationToken);

        public async Task AppendAsync(ReadOnlyMemory<TelemetryPoint> points, CancellationToken cancellationToken)
        {
            await gate.WaitAsync(cancellationToken);
            await inner.AppendAsync(points, cancellationToken);
        }

        public Task<IReadOnlyList<LatestValue>> GetLatestAsync(string deviceId, CancellationToken cancellationToken) => inner.GetLatestAsync(deviceId, cancellationToken);

        public Task<RawPointPage> QueryRawAsync(string deviceId, string metric, long fromMs, long toMs, int limit, string? cursor, CancellationToken cancellationToken) =>
            inner.QueryRawAsync(deviceId, metric, fromMs, toMs, limit, cursor, cancellationToken);

        public Task<IReadOnlyList<AggregateBucket>> QueryAggregatesAsync(string deviceId, string metric, long fromMs, long toMs, long intervalMs, CancellationToken cancellationToken) =>
            inner.QueryAggregatesAsync(deviceId, metric, fromMs, toMs, intervalMs, cancellationToken);

        public Task<long> DeleteOlderThanAsync(long cutoffMs, CancellationToken cancellationToken) => inner.DeleteOlderThanAsync(cutoffMs, cancellationToken);

        public Task DeleteDeviceAsync(string deviceId, CancellationToken cancellationToken) => inner.DeleteDeviceAsync(deviceId, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
