using Microsoft.AspNetCore.Connections;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// Serves MQTT on a Kestrel listener: <c>listen.UseConnectionHandler&lt;MqttConnectionHandler&gt;()</c>, so that
/// MQTT over TCP, TLS and WebSocket share one host.
/// </summary>
public sealed class MqttConnectionHandler : ConnectionHandler
{
    private readonly MqttBroker _broker;

    /// <summary>Creates the handler for a broker.</summary>
    public MqttConnectionHandler(MqttBroker broker) => _broker = broker;

    /// <inheritdoc />
    public override Task OnConnectedAsync(ConnectionContext connection) => _broker.RunConnectionAsync(connection);
}
