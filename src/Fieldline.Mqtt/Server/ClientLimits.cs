namespace Fieldline.Mqtt.Server;

/// <summary>
/// The per-client limits checked on packets after CONNECT: the length and depth of topic names and filters and the
/// number of subscriptions. Each refusal is counted in <c>fieldline.mqtt.limits_reached</c>. Topic names are
/// checked on every PUBLISH: a length comparison and, only for topics long enough to have too many levels, one
/// vectorized count of '/'; nothing is allocated.
/// </summary>
internal sealed class ClientLimits(MqttBrokerOptions options, MqttBrokerMetrics metrics)
{
    /// <summary>Whether a PUBLISH topic name (or a will topic) is within the limits.</summary>
    public bool AllowsTopicName(ReadOnlySpan<byte> topic) => Allows(topic, MqttLimitNames.TopicLength, MqttLimitNames.TopicLevels);

    /// <summary>Whether a SUBSCRIBE topic filter is within the limits.</summary>
    public bool AllowsFilter(ReadOnlySpan<byte> filter) => Allows(filter, MqttLimitNames.FilterLength, MqttLimitNames.FilterLevels);

    /// <summary>Whether a session holding <paramref name="subscriptions"/> subscriptions may add one.</summary>
    public bool AllowsAnotherSubscription(int subscriptions)
    {
        var maximum = options.MaximumSubscriptionsPerClient;
        if (maximum > 0 && subscriptions >= maximum)
        {
            metrics.LimitReached(MqttLimitNames.SubscriptionsPerClient);
            return false;
        }

        return true;
    }

    private bool Allows(ReadOnlySpan<byte> topic, string lengthLimit, string levelsLimit)
    {
        var maximumLength = options.MaximumTopicLength;
        if (maximumLength > 0 && topic.Length > maximumLength)
        {
            metrics.LimitReached(lengthLimit);
            return false;
        }

        // A topic of n bytes has at most n + 1 levels: most topics are too short to need counting.
        var maximumLevels = options.MaximumTopicLevels;
        if (maximumLevels > 0 && topic.Length >= maximumLevels && topic.Count((byte)'/') + 1 > maximumLevels)
        {
            metrics.LimitReached(levelsLimit);
            return false;
        }

        return true;
    }
}
