using System.Net;
using Fieldline.Mqtt.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>
/// A real broker on a real Kestrel listener bound to a port the OS picks. Disposing it stops the host and fails
/// the test if the broker (or Kestrel) logged anything at Error or above.
/// </summary>
public sealed class TestBroker : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _disposed;

    private TestBroker(WebApplication app, MqttBroker broker, RecordingLoggerProvider logs, int port)
    {
        _app = app;
        Broker = broker;
        Logs = logs;
        Port = port;
    }

    public MqttBroker Broker { get; }

    public RecordingLoggerProvider Logs { get; }

    public int Port { get; }

    public static async Task<TestBroker> StartAsync(Action<MqttBrokerOptions>? configure = null, MqttBrokerPolicy? policy = null, TimeProvider? timeProvider = null)
    {
        var logs = new RecordingLoggerProvider();
        // $SYS topics are off unless a test turns them on, so that retained messages and deliveries are the test's own.
        var options = new MqttBrokerOptions { SysTopicInterval = TimeSpan.Zero };
        configure?.Invoke(options);
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        var broker = new MqttBroker(options, policy, timeProvider, loggerFactory);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddProvider(logs);
        builder.Services.AddSingleton(broker);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseConnectionHandler<MqttConnectionHandler>()));
        var app = builder.Build();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var port = new Uri(address).Port;
        return new TestBroker(app, broker, logs, port);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await Broker.DisposeAsync();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await _app.StopAsync(cts.Token);
        }

        await _app.DisposeAsync();
        var errors = Logs.Entries.Where(e => e.Level >= LogLevel.Error).ToList();
        if (errors.Count > 0)
        {
            Assert.Fail("The broker logged errors:\n" + string.Join("\n", errors));
        }
    }
}
