using System.Collections.Concurrent;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// The last retained message of each topic, kept in the broker's state store when it has one. A new subscription
/// is matched against every retained topic; that scan happens once per SUBSCRIBE, never per PUBLISH.
/// </summary>
internal sealed class RetainedMessageStore(MqttBroker broker)
{
    private readonly ConcurrentDictionary<string, MqttApplicationMessage> _messages = new(StringComparer.Ordinal);
    private readonly Lock _writeLock = new();

    public int Count => _messages.Count;

    /// <summary>
    /// Stores the message, or clears the topic when its payload is empty (MQTT-3.3.1-6). False when the message
    /// would be a new retained topic beyond <see cref="MqttBrokerOptions.MaximumRetainedMessages"/>.
    /// </summary>
    public bool TrySet(MqttApplicationMessage message)
    {
        // One writer at a time, so that the store sees the changes of a topic in the order the map does.
        lock (_writeLock)
        {
            if (message.Payload.IsEmpty)
            {
                if (_messages.TryRemove(message.Topic, out _))
                {
                    broker.Store?.RemoveRetained(message.Topic);
                }

                return true;
            }

            if (_messages.Count >= broker.Options.MaximumRetainedMessages && !_messages.ContainsKey(message.Topic))
            {
                broker.Metrics.LimitReached("retained_messages");
                return false;
            }

            _messages[message.Topic] = message;
            if (!message.Topic.StartsWith("$SYS/", StringComparison.Ordinal))
            {
                // $SYS figures are the broker's own and made anew after a restart: not worth a write every interval.
                broker.Store?.PutRetained(message);
            }

            return true;
        }
    }

    /// <summary>Puts back a message read from the state store at start.</summary>
    public void Restore(MqttApplicationMessage message) => _messages[message.Topic] = message;

    /// <summary>The retained messages matching a filter; expired ones are removed instead (MQTT-3.3.2-5).</summary>
    public List<MqttApplicationMessage> Match(string filter)
    {
        var filterBytes = System.Text.Encoding.UTF8.GetBytes(filter);
        var result = new List<MqttApplicationMessage>();
        var now = broker.TimeProvider.GetUtcNow();
        foreach (var message in _messages.Values)
        {
            if (!TopicFilter.Matches(filterBytes, message.TopicUtf8))
            {
                continue;
            }

            if (message.ExpiresAt <= now)
            {
                lock (_writeLock)
                {
                    if (_messages.TryRemove(new KeyValuePair<string, MqttApplicationMessage>(message.Topic, message)))
                    {
                        broker.Store?.RemoveRetained(message.Topic);
                    }
                }

                continue;
            }

            result.Add(message);
        }

        return result;
    }
}
