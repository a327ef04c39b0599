using MQTTnet;
using MQTTnet.Formatter;

namespace Fieldline.Tests.Infrastructure;

/// <summary>MQTTnet clients connected to a test environment's broker.</summary>
internal static class MqttTestClient
{
    public static MqttClientOptions Options(TestEnvironment environment, string clientId, string? username, string? password, MqttProtocolVersion version = MqttProtocolVersion.V500, bool cleanStart = true, TimeSpan? keepAlive = null) =>
        Options(environment.Application.MqttPort!.Value, clientId, username, password, version, cleanStart, keepAlive);

    public static MqttClientOptions Options(int port, string clientId, string? username, string? password, MqttProtocolVersion version = MqttProtocolVersion.V500, bool cleanStart = true, TimeSpan? keepAlive = null)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithClientId(clientId)
            .WithProtocolVersion(version)
            .WithCleanStart(cleanStart)
            .WithKeepAlivePeriod(keepAlive ?? TimeSpan.FromSeconds(30))
            .WithTimeout(TimeSpan.FromSeconds(10));
        if (username is not null)
        {
            builder.WithCredentials(username, password);
        }

        return builder.Build();
    }

    /// <summary>Connects and returns the client with the CONNACK's result code (no exception for a refusal).</summary>
    public static async Task<(IMqttClient Client, MqttClientConnectResultCode Result)> ConnectAsync(MqttClientOptions options)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        try
        {
            var result = await client.ConnectAsync(options);
            return (client, result.ResultCode);
        }
        catch (MQTTnet.Adapter.MqttConnectingFailedException ex)
        {
            // MQTTnet 5 reports a refusal only in the message ("Connecting with MQTT server failed (NotAuthorized).").
            var code = Enum.GetValues<MqttClientConnectResultCode>()
                .Where(c => ex.Message.Contains($"({c})", StringComparison.Ordinal))
                .DefaultIfEmpty(MqttClientConnectResultCode.UnspecifiedError)
                .First();
            return (client, code);
        }
    }
}
