using System.Text;
using Fieldline.Core.Events;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;

namespace Fieldline.Broker;

/// <summary>
/// Publishes every event on <c>$fieldline/events/{event_type}/{device_id}</c> (QoS 1, not retained) for privileged
/// MQTT clients: the operator login, and service accounts whose rules allow such a filter. Devices and anonymous
/// clients cannot subscribe to '$' topics. An event without a device goes to <c>.../{event_type}/-</c>.
/// </summary>
internal sealed partial class MqttEventPublisher(EventBus events, MqttBroker broker, ILogger<MqttEventPublisher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        long? last = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var e in events.SubscribeAsync(EventFilter.Everything, last, stoppingToken))
                {
                    last = e.Sequence;
                    var topic = $"$fieldline/events/{e.EventType}/{e.DeviceId ?? "-"}";
                    broker.Publish(new MqttApplicationMessage(topic, Encoding.UTF8.GetBytes(e.ToJson().ToJsonString()), qualityOfService: 1));
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                // The broker was released before this service stopped (host shutdown): nothing left to publish to.
                return;
            }
            catch (EventSubscriberLaggedException e)
            {
                // Resumed from the last event published, from the bus's retained events.
                LogLagged(logger, e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publishing events over MQTT fell behind; resuming from the last one published")]
    private static partial void LogLagged(ILogger logger, Exception exception);
}
