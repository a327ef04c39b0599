using Microsoft.Extensions.Logging;

namespace Fieldline.Mqtt.Server;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "MQTT client {ClientId} connected from {RemoteEndPoint} (protocol {ProtocolVersion}, session present {SessionPresent})")]
    public static partial void ClientConnected(ILogger logger, string clientId, string? remoteEndPoint, MqttProtocolVersion protocolVersion, bool sessionPresent);

    [LoggerMessage(2, LogLevel.Debug, "MQTT client {ClientId} disconnected: {Kind}")]
    public static partial void ClientDisconnected(ILogger logger, string clientId, MqttDisconnectKind kind);

    [LoggerMessage(3, LogLevel.Information, "MQTT connection {ConnectionId} from {RemoteEndPoint} closed for a protocol error ({ReasonCode}): {Message}")]
    public static partial void ProtocolError(ILogger logger, string connectionId, string? remoteEndPoint, MqttReasonCode reasonCode, string message);

    [LoggerMessage(4, LogLevel.Information, "MQTT CONNECT from {RemoteEndPoint} as {ClientId} refused: {ReasonCode}")]
    public static partial void ConnectRefused(ILogger logger, string? remoteEndPoint, string clientId, MqttReasonCode reasonCode);

    [LoggerMessage(5, LogLevel.Warning, "MQTT client {ClientId} did not read for {Timeout} and was disconnected as a slow consumer")]
    public static partial void SlowConsumer(ILogger logger, string clientId, TimeSpan timeout);

    [LoggerMessage(6, LogLevel.Warning, "Acknowledgement of a message from MQTT client {ClientId} failed; the message was not accepted")]
    public static partial void CompletionFailed(ILogger logger, string clientId, Exception exception);

    [LoggerMessage(7, LogLevel.Error, "MQTT connection {ConnectionId} failed")]
    public static partial void ConnectionFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(8, LogLevel.Debug, "MQTT client {ClientId}: session taken over by a new connection")]
    public static partial void SessionTakenOver(ILogger logger, string clientId);

    [LoggerMessage(9, LogLevel.Information, "MQTT state loaded: {Sessions} persistent sessions, {Retained} retained messages")]
    public static partial void StateLoaded(ILogger logger, int sessions, int retained);

    [LoggerMessage(10, LogLevel.Debug, "MQTT connection {ConnectionId}: {ReasonCode} sent to the client: {Reason}")]
    public static partial void RefusedWithReason(ILogger logger, string connectionId, MqttReasonCode reasonCode, string reason);
}
