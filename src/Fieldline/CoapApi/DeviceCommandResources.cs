using System.Text.Json;
using System.Text.Json.Nodes;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Fieldline.Core.Commands;

namespace Fieldline.CoapApi;

/// <summary>
/// <c>GET /api/v1/{token}/commands</c>: a JSON array of the device's pending commands, each as MQTT's command topic
/// carries it (<c>command_id</c>, <c>type</c>, <c>parameters</c>, <c>timestamp</c>). Observed, a new command is
/// notified at once, always Confirmable: a command is marked delivered when the device acknowledges the
/// notification that carries it, or when it went in the answer to the device's GET.
/// </summary>
internal sealed class DeviceCommandsResource : DeviceCoapResource
{
    private readonly CommandService _commands;

    public DeviceCommandsResource(CoapDeviceSessions sessions, CommandService commands, CoapCommandTransport transport)
        : base("commands", sessions)
    {
        _commands = commands;
        transport.Sent += NotifyDevice;
    }

    public override CoapLinkAttributes? Link { get; } = new("fieldline.commands", ContentFormat: CoapContentFormat.Json, Observable: true);

    public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

    public override bool ConfirmableNotifications => true;

    protected override async ValueTask<CoapResponse> HandleDeviceAsync(string deviceId, CoapRequest request, CancellationToken cancellationToken)
    {
        var pending = await _commands.ListPendingAsync(deviceId, cancellationToken).ConfigureAwait(false);
        var document = new JsonArray([.. pending.Select(c => (JsonNode)c.ToWire())]);
        return Json(CoapCode.Content, document) with
        {
            Delivered = pending.Count == 0 ? null : () =>
            {
                foreach (var command in pending)
                {
                    _ = _commands.MarkDeliveredAsync(command);
                }
            },
        };
    }
}

/// <summary>
/// <c>POST /api/v1/{token}/commands/{command_id}/response</c> with the seed's CommandResponse
/// (<c>{"status":"success"|"failed","message":"..."}</c>; a <c>command_id</c> in the body must be the path's). 2.04
/// once the outcome is stored; 4.04 for a command that is unknown, another device's, or finished.
/// </summary>
internal sealed class DeviceCommandResponseResource(CoapDeviceSessions sessions, CommandService commands) : DeviceCoapResource("commands/{command_id}/response", sessions)
{
    public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Post];

    public override IReadOnlyList<int>? AcceptedContentFormats { get; } = [CoapContentFormat.Json];

    protected override async ValueTask<CoapResponse> HandleDeviceAsync(string deviceId, CoapRequest request, CancellationToken cancellationToken)
    {
        var commandId = request.Path[4];
        JsonObject? body;
        try
        {
            body = JsonNode.Parse(request.Payload) as JsonObject;
        }
        catch (JsonException e)
        {
            return BadRequest($"The payload is not valid JSON: {e.Message}");
        }

        if (body is null
            || body["status"] is not JsonValue status || !status.TryGetValue<string>(out var statusText) || statusText is not ("success" or "failed"))
        {
            return BadRequest("The payload must be a CommandResponse: {\"status\":\"success\"|\"failed\",\"message\":\"...\"}.");
        }

        if (body["command_id"] is { } named && (named is not JsonValue idValue || !idValue.TryGetValue<string>(out var id) || id != commandId))
        {
            return BadRequest("command_id in the body differs from the path's.");
        }

        var message = body["message"] is JsonValue text && text.TryGetValue<string>(out var m) ? m : null;
        return await commands.RespondAsync(deviceId, new CommandResponse(commandId, statusText == "success", message), cancellationToken).ConfigureAwait(false)
            ? new CoapResponse(CoapCode.Changed)
            : CoapResponse.Text(CoapCode.NotFound, $"The device has no open command '{commandId}'.");
    }
}

/// <summary>The CoAP side of <see cref="ICommandTransport"/>: a new command notifies its device's observers of <c>commands</c>.</summary>
internal sealed class CoapCommandTransport : ICommandTransport
{
    /// <summary>Raised with the device id of each command sent.</summary>
    public event Action<string>? Sent;

    /// <summary>The delivery is marked by <see cref="DeviceCommandsResource"/> when the device has the command.</summary>
    public void Send(DeviceCommand command, Action delivered)
    {
        ArgumentNullException.ThrowIfNull(command);
        Sent?.Invoke(command.DeviceId);
    }
}
