using Microsoft.Extensions.Logging;

namespace Fieldline.Mqtt.Server;

/// <summary>Log messages of the connection limits (event ids from 100, apart from the broker's own).</summary>
internal static partial class Log
{
    [LoggerMessage(100, LogLevel.Information, "MQTT connection from {RemoteEndPoint} closed unanswered: the broker is at its limit of {MaximumConnections} connections")]
    public static partial void ConnectionRejected(ILogger logger, string? remoteEndPoint, int maximumConnections);
}
