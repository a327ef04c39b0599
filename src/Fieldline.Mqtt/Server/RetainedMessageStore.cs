using System.Collections.Concurrent;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// The last retained message of each topic. A new subscription is matched against every retained topic;
/// that scan happens once per SUBSCRIBE, never per PUBLISH.
/// </summary>
internal sealed class RetainedMessageStore
{
    private readonly ConcurrentDictionary<string, MqttApplicationMessage> _messages = new(StringComparer.Ordinal);

    public int Count => _messages.Count;

    /// <summary>Stores the message, or clears the topic when its payload is empty (MQTT-3.3.1-6).</summary>
    public void Set(MqttApplicationMessage message)
    {
        if (message.Payload.IsEmpty)
        {
            _messages.TryRemove(message.Topic, out _);
        }
        else
        {
            _messages[message.Topic] = message;
        }
    }

    public List<MqttApplicationMessage> Match(string filter)
    {
        var filterBytes = System.Text.Encoding.UTF8.GetBytes(filter);
        var result = new List<MqttApplicationMessage>();
        foreach (var message in _messages.Values)
        {
            if (TopicFilter.Matches(filterBytes, message.TopicUtf8))
            {
                result.Add(message);
            }
        }

        return result;
    }
}
