namespace Fieldline.Mqtt.Server;

/// <summary>The values of the <c>limit</c> tag of <c>fieldline.mqtt.limits_reached</c>: which limit refused.</summary>
public static class MqttLimitNames
{
    /// <summary><see cref="MqttBrokerOptions.MaximumRetainedMessages"/>.</summary>
    public const string RetainedMessages = "retained_messages";

    /// <summary><see cref="MqttBrokerOptions.MaximumConnections"/>.</summary>
    public const string Connections = "connections";

    /// <summary><see cref="MqttBrokerOptions.MaximumConnectionsPerAddress"/>.</summary>
    public const string ConnectionsPerAddress = "connections_per_address";

    /// <summary><see cref="MqttBrokerOptions.MaximumConnectRate"/>.</summary>
    public const string ConnectRate = "connect_rate";

    /// <summary><see cref="MqttBrokerOptions.MaximumSubscriptionsPerClient"/>.</summary>
    public const string SubscriptionsPerClient = "subscriptions_per_client";

    /// <summary><see cref="MqttBrokerOptions.MaximumTopicLength"/> for a topic name.</summary>
    public const string TopicLength = "topic_length";

    /// <summary><see cref="MqttBrokerOptions.MaximumTopicLevels"/> for a topic name.</summary>
    public const string TopicLevels = "topic_levels";

    /// <summary><see cref="MqttBrokerOptions.MaximumTopicLength"/> for a topic filter.</summary>
    public const string FilterLength = "filter_length";

    /// <summary><see cref="MqttBrokerOptions.MaximumTopicLevels"/> for a topic filter.</summary>
    public const string FilterLevels = "filter_levels";
}
