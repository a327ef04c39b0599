using System.Net;
using Fieldline.Coap.Client;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using MQTTnet;
using MQTTnet.Protocol;

namespace Fieldline.Simulator;

/// <summary>How one simulated device reaches Fieldline: MQTT or CoAP.</summary>
internal interface ISimulatedDeviceLink : IAsyncDisposable
{
    /// <summary>Sends one telemetry message; true when Fieldline acknowledged it (PUBACK, 2.04), or sent at QoS 0 / NON.</summary>
    Task<bool> SendTelemetryAsync(byte[] payload, CancellationToken cancellationToken);
}

/// <summary>A device on its own MQTT connection, publishing to <c>sensor/{id}/telemetry</c>.</summary>
internal sealed class MqttDeviceLink(IMqttClient client, string deviceId, MqttQualityOfServiceLevel qos) : ISimulatedDeviceLink
{
    private readonly string _topic = $"sensor/{deviceId}/telemetry";

    public static async Task<MqttDeviceLink> ConnectAsync(MqttClientFactory factory, string host, int port, string deviceId, string token, int qos, CancellationToken cancellationToken)
    {
        var client = factory.CreateMqttClient();
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(deviceId)
            .WithCredentials(deviceId, token)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(60))
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .Build();
        try
        {
            await client.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            client.Dispose();
            throw;
        }

        return new MqttDeviceLink(client, deviceId, (MqttQualityOfServiceLevel)qos);
    }

    public async Task<bool> SendTelemetryAsync(byte[] payload, CancellationToken cancellationToken)
    {
        var message = new MqttApplicationMessageBuilder().WithTopic(_topic).WithPayload(payload).WithQualityOfServiceLevel(qos).Build();
        return (await client.PublishAsync(message, cancellationToken).ConfigureAwait(false)).IsSuccess;
    }

    public async ValueTask DisposeAsync()
    {
        if (client.IsConnected)
        {
            await client.DisconnectAsync(new MqttClientDisconnectOptions(), CancellationToken.None).ConfigureAwait(false);
        }

        client.Dispose();
    }
}

/// <summary>
/// A device with its own UDP socket (Fieldline's <see cref="CoapClient"/>), POSTing to
/// <c>/api/v1/{token}/telemetry</c>: Confirmable at QoS 1, Non-confirmable at QoS 0.
/// </summary>
internal sealed class CoapDeviceLink(IPEndPoint server, string token, bool confirmable) : ISimulatedDeviceLink
{
    private readonly CoapClient _client = new(server);
    private readonly string _path = $"api/v1/{token}/telemetry";

    public async Task<bool> SendTelemetryAsync(byte[] payload, CancellationToken cancellationToken)
    {
        var response = await _client.SendAsync(CoapCode.Post, _path, payload, CoapContentFormat.Json, confirmable, cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.Code == CoapCode.Changed;
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
