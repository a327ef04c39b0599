using Microsoft.Extensions.Logging;

namespace Fieldline.Mqtt.Server;

/// <summary>Log messages of access: connection limits and restored authorizations (event ids from 100, apart from the broker's own).</summary>
internal static partial class Log
{
    [LoggerMessage(101, LogLevel.Information, "Subscription {Filter} of restored MQTT session {ClientId} dropped: the policy no longer grants it")]
    public static partial void RestoredSubscriptionDropped(ILogger logger, string clientId, string filter);

    [LoggerMessage(100, LogLevel.Information, "MQTT connection from {RemoteEndPoint} closed unanswered: the broker is at its limit of {MaximumConnections} connections")]
    public static partial void ConnectionRejected(ILogger logger, string? remoteEndPoint, int maximumConnections);
}
