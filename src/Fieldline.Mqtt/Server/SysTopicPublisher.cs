using System.Globalization;
using System.Reflection;
using System.Text;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// Publishes the broker's figures as retained QoS 0 messages under <c>$SYS/broker/</c>, with mosquitto's topic
/// names and payload formats so that tools written for mosquitto read them: at start and then every
/// <see cref="MqttBrokerOptions.SysTopicInterval"/> on the broker's clock. Filters starting with a wildcard
/// never match these topics (MQTT-4.7.2-1), and the default policy refuses client publishes to '$' topics.
/// </summary>
/// <remarks>
/// Unlike mosquitto, whose <c>messages/received</c> and <c>messages/sent</c> count packets of any type, these
/// count PUBLISH packets (mosquitto's <c>publish/messages/*</c>); bytes count whole packets as the broker's
/// metrics do.
/// </remarks>
internal sealed class SysTopicPublisher : IAsyncDisposable
{
    public const string VersionTopic = "$SYS/broker/version";
    public const string UptimeTopic = "$SYS/broker/uptime";
    public const string ClientsConnectedTopic = "$SYS/broker/clients/connected";
    public const string ClientsTotalTopic = "$SYS/broker/clients/total";
    public const string MessagesReceivedTopic = "$SYS/broker/messages/received";
    public const string MessagesSentTopic = "$SYS/broker/messages/sent";
    public const string BytesReceivedTopic = "$SYS/broker/bytes/received";
    public const string BytesSentTopic = "$SYS/broker/bytes/sent";
    public const string SubscriptionsCountTopic = "$SYS/broker/subscriptions/count";
    public const string RetainedCountTopic = "$SYS/broker/retained messages/count";

    private readonly MqttBroker _broker;
    private readonly long _startedAt;
    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private bool _versionPublished;
    private bool _disposed;

    public SysTopicPublisher(MqttBroker broker, TimeSpan interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        _broker = broker;
        _startedAt = broker.TimeProvider.GetTimestamp();
        _timer = broker.TimeProvider.CreateTimer(static state => ((SysTopicPublisher)state!).PublishAll(), this, TimeSpan.Zero, interval);
    }

    /// <summary>The version published on <see cref="VersionTopic"/>, as mosquitto writes its own ("mosquitto version 2.0.11").</summary>
    public static string VersionText { get; } = "fieldline version " + (typeof(SysTopicPublisher).Assembly
        .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown");

    public async ValueTask DisposeAsync()
    {
        // Taking the gate waits for a publication under way, so nothing is routed once the broker tears down.
        lock (_gate)
        {
            _disposed = true;
        }

        await _timer.DisposeAsync().ConfigureAwait(false);
    }

    private void PublishAll()
    {
        // Timer callbacks can overlap when one runs late: a tick that finds another under way is skipped.
        if (!_gate.TryEnter())
        {
            return;
        }

        try
        {
            if (_disposed)
            {
                return;
            }

            if (!_versionPublished)
            {
                Publish(VersionTopic, VersionText);
                _versionPublished = true;
            }

            var uptime = (long)_broker.TimeProvider.GetElapsedTime(_startedAt).TotalSeconds;
            Publish(UptimeTopic, uptime.ToString(CultureInfo.InvariantCulture) + " seconds");
            Publish(ClientsConnectedTopic, _broker.ConnectedClients);
            Publish(ClientsTotalTopic, _broker.SessionCount);
            Publish(MessagesReceivedTopic, _broker.MessagesReceived);
            Publish(MessagesSentTopic, _broker.MessagesSent);
            Publish(BytesReceivedTopic, _broker.Metrics.BytesReceived);
            Publish(BytesSentTopic, _broker.Metrics.BytesSent);
            Publish(SubscriptionsCountTopic, _broker.SubscriptionCount);

            // Like mosquitto's, the count includes the $SYS messages themselves.
            Publish(RetainedCountTopic, _broker.RetainedCount);
        }
        finally
        {
            _gate.Exit();
        }
    }

    private void Publish(string topic, long value) => Publish(topic, value.ToString(CultureInfo.InvariantCulture));

    private void Publish(string topic, string payload) =>
        _broker.Publish(new MqttApplicationMessage(topic, Encoding.UTF8.GetBytes(payload), qualityOfService: 0, retain: true));
}
