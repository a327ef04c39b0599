using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Transport;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fieldline.Broker;

/// <summary>
/// MQTT over WebSocket on the HTTP port at <c>/mqtt</c>: the WebSocket is served by the broker like any
/// connection. The client must offer the subprotocol <c>mqtt</c> (MQTT-6.0.0-3; browsers' MQTT.js and MQTTnet do).
/// </summary>
internal static class MqttWebSocketEndpoint
{
    public const string Path = "/mqtt";
    public const string SubProtocol = "mqtt";

    public static IEndpointConventionBuilder MapMqttWebSocket(this IEndpointRouteBuilder app) =>
        app.Map(Path, ServeAsync).ExcludeFromDescription();

    private static async Task<Results<EmptyHttpResult, ProblemHttpResult>> ServeAsync(HttpContext context, MqttBroker broker)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "WebSocket upgrade required",
                detail: $"{Path} serves MQTT over WebSocket: open a WebSocket with the subprotocol '{SubProtocol}'.");
        }

        if (!context.WebSockets.WebSocketRequestedProtocols.Contains(SubProtocol, StringComparer.Ordinal))
        {
            // Without the subprotocol the client has not said it speaks MQTT; accepting would leave it guessing.
            return TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "MQTT subprotocol required",
                detail: $"Offer the WebSocket subprotocol '{SubProtocol}' (Sec-WebSocket-Protocol: {SubProtocol}).");
        }

        using var webSocket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = SubProtocol });
        var connection = new WebSocketConnection(
            webSocket,
            context.Connection.Id,
            context.Connection.LocalIpAddress is { } localAddress ? new System.Net.IPEndPoint(localAddress, context.Connection.LocalPort) : null,
            context.Connection.RemoteIpAddress is { } remoteAddress ? new System.Net.IPEndPoint(remoteAddress, context.Connection.RemotePort) : null);
        await using (connection)
        {
            connection.Start();
            await broker.RunConnectionAsync(connection);
        }

        return TypedResults.Empty;
    }
}
