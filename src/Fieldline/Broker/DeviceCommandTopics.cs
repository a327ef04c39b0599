using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fieldline.Core.Commands;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Broker;

/// <summary>
/// Commands over MQTT, as the seed's actuators use them: the seed's Command JSON goes to <c>device/{id}/command</c>
/// at QoS 1 (the device's PUBACK marks it delivered), and the device answers with the seed's CommandResponse on
/// <c>device/{id}/response</c> (acknowledged once the outcome is stored). Pending commands are sent when the device
/// subscribes to its command topic.
/// </summary>
internal sealed partial class DeviceCommandTopics : ICommandTransport
{
    private readonly Lazy<MqttBroker> _broker;
    private readonly Lazy<CommandService> _commands;
    private readonly ILogger<DeviceCommandTopics> _logger;

    public DeviceCommandTopics(IServiceProvider services, ILogger<DeviceCommandTopics> logger)
    {
        // Both are built after the policy that uses this class: looked up on first use.
        _broker = new Lazy<MqttBroker>(services.GetRequiredService<MqttBroker>);
        _commands = new Lazy<CommandService>(services.GetRequiredService<CommandService>);
        _logger = logger;
    }

    public void Send(DeviceCommand command, Action delivered)
    {
        ArgumentNullException.ThrowIfNull(command);
        var deviceId = command.DeviceId;
        _broker.Value.Publish(new MqttApplicationMessage(CommandTopic(deviceId), Encoding.UTF8.GetBytes(command.ToWire().ToJsonString()), qualityOfService: 1)
        {
            Acknowledged = clientId =>
            {
                if (clientId == deviceId)
                {
                    delivered();
                }
            },
        });
    }

    /// <summary>
    /// Handles a device's PUBLISH to its response topic; null when <paramref name="suffix"/> (the topic after
    /// <c>device/{id}/</c>) is not <c>response</c>. A payload that
    /// is not a CommandResponse is refused (0x99); a response to an unknown or finished command is accepted and ignored.
    /// </summary>
    public MqttPublishDecision? TryHandle(string deviceId, ReadOnlySpan<byte> suffix, ReadOnlyMemory<byte> payload)
    {
        if (!suffix.SequenceEqual("response"u8))
        {
            return null;
        }

        if (!TryParseResponse(payload.Span, out var response))
        {
            LogMalformedResponse(_logger, deviceId);
            return MqttPublishDecision.Refuse(MqttReasonCode.PayloadFormatInvalid);
        }

        return MqttPublishDecision.AcceptWhen(RespondAsync(deviceId, response!));
    }

    /// <summary>A device subscribed: when a filter covers its command topic, its pending commands are sent.</summary>
    public void OnDeviceSubscribed(string deviceId, IReadOnlyList<string> filters)
    {
        var topic = Encoding.UTF8.GetBytes(CommandTopic(deviceId));
        if (filters.Any(f => TopicFilter.Matches(Encoding.UTF8.GetBytes(f), topic)))
        {
            _ = SendPendingAsync(deviceId);
        }
    }

    /// <summary>Reads the seed's CommandResponse: <c>{"command_id": "...", "status": "success"|"failed", "message": "..."}</c>.</summary>
    internal static bool TryParseResponse(ReadOnlySpan<byte> payload, out CommandResponse? response)
    {
        response = null;
        try
        {
            if (JsonNode.Parse(payload) is not JsonObject body
                || body["command_id"] is not JsonValue id || !id.TryGetValue<string>(out var commandId) || commandId.Length == 0
                || body["status"] is not JsonValue status || !status.TryGetValue<string>(out var statusText) || statusText is not ("success" or "failed"))
            {
                return false;
            }

            var message = body["message"] is JsonValue text && text.TryGetValue<string>(out var m) ? m : null;
            response = new CommandResponse(commandId, statusText == "success", message);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private async Task RespondAsync(string deviceId, CommandResponse response)
    {
        if (!await _commands.Value.RespondAsync(deviceId, response, CancellationToken.None).ConfigureAwait(false))
        {
            LogUnknownResponse(_logger, deviceId, response.CommandId);
        }
    }

    private async Task SendPendingAsync(string deviceId)
    {
        try
        {
            await _commands.Value.SendPendingAsync(deviceId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogSendPendingFailed(_logger, deviceId, e);
        }
    }

    private static string CommandTopic(string deviceId) => $"device/{deviceId}/command";

    [LoggerMessage(Level = LogLevel.Information, Message = "Device {DeviceId} sent a response that is not a CommandResponse (command_id, status success|failed); refused")]
    private static partial void LogMalformedResponse(ILogger logger, string deviceId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Device {DeviceId} answered command {CommandId}, which is unknown or already finished; ignored")]
    private static partial void LogUnknownResponse(ILogger logger, string deviceId, string commandId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not send the pending commands of device {DeviceId}")]
    private static partial void LogSendPendingFailed(ILogger logger, string deviceId, Exception exception);
}
