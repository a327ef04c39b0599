using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Fieldline.Core.Shadows;

namespace Fieldline.CoapApi;

/// <summary>
/// <c>GET /api/v1/{token}/shadow</c>: the device's shadow document, as MQTT's <c>get/accepted</c> has it
/// (<c>state.desired</c>, <c>state.reported</c>, <c>state.delta</c>, <c>version</c>). Observed, it notifies whenever
/// the delta changes: when an operator changes desired, and when the device's reports close the gap.
/// </summary>
internal sealed class DeviceShadowResource : DeviceCoapResource, IDisposable
{
    private readonly ShadowService _shadows;

    public DeviceShadowResource(CoapDeviceSessions sessions, ShadowService shadows)
        : base("shadow", sessions)
    {
        _shadows = shadows;
        _shadows.Changed += OnChanged;
    }

    public override CoapLinkAttributes? Link { get; } = new("fieldline.shadow", ContentFormat: CoapContentFormat.Json, Observable: true);

    public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

    public void Dispose() => _shadows.Changed -= OnChanged;

    protected override async ValueTask<CoapResponse> HandleDeviceAsync(string deviceId, CoapRequest request, CancellationToken cancellationToken)
    {
        var outcome = await _shadows.GetAsync(deviceId, cancellationToken).ConfigureAwait(false);
        return outcome.Shadow is { } shadow
            ? Json(CoapCode.Content, shadow.ToDocument())
            : CoapResponse.Text(CoapCode.NotFound, outcome.Message ?? "The device has no shadow.");
    }

    private void OnChanged(ShadowChange change)
    {
        if (!JsonNode.DeepEquals(change.Before.Delta, change.After.Delta))
        {
            NotifyDevice(change.After.DeviceId);
        }
    }
}

/// <summary>
/// <c>POST /api/v1/{token}/shadow/reported</c> with the reported state as a JSON object (<c>{"mode":"eco"}</c>; a
/// null value removes a key), optionally <c>?version=N</c> to apply it only to that version. 2.04 with the shadow
/// document follows the durable write; 4.00 for a body that is no JSON object, 4.12 for another version, 4.13 past
/// the shadow's size limit.
/// </summary>
internal sealed class DeviceShadowReportedResource(CoapDeviceSessions sessions, ShadowService shadows) : DeviceCoapResource("shadow/reported", sessions)
{
    public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Post, CoapCode.Put];

    public override IReadOnlyList<int>? AcceptedContentFormats { get; } = [CoapContentFormat.Json];

    protected override async ValueTask<CoapResponse> HandleDeviceAsync(string deviceId, CoapRequest request, CancellationToken cancellationToken)
    {
        JsonNode? reported;
        try
        {
            reported = JsonNode.Parse(request.Payload);
        }
        catch (JsonException e)
        {
            return BadRequest($"The payload is not valid JSON: {e.Message}");
        }

        if (reported is not JsonObject)
        {
            return BadRequest("The payload must be a JSON object of reported state, such as {\"mode\":\"eco\"}.");
        }

        var body = new JsonObject { ["state"] = new JsonObject { ["reported"] = reported } };
        if (request.QueryValue("version") is { } version)
        {
            if (!long.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var expected))
            {
                return BadRequest("version must be a whole number.");
            }

            body["version"] = expected;
        }

        if (ShadowUpdateRequest.Parse(body, out var update) is { } errors)
        {
            return BadRequest(string.Join("; ", errors.Select(e => $"{e.Key} {string.Join(", ", e.Value)}")));
        }

        var outcome = await shadows.UpdateAsync(deviceId, update!.Update, ShadowWriter.Device, update.Version, cancellationToken).ConfigureAwait(false);
        return outcome.Status switch
        {
            ShadowStatus.Ok => Json(CoapCode.Changed, outcome.Shadow!.ToDocument()),
            ShadowStatus.VersionConflict => CoapResponse.Text(CoapCode.PreconditionFailed, outcome.Message ?? "The shadow has another version."),
            ShadowStatus.TooLarge => CoapResponse.Text(CoapCode.RequestEntityTooLarge, outcome.Message ?? "The shadow would be too large."),
            ShadowStatus.DeviceNotFound => CoapResponse.Text(CoapCode.NotFound, outcome.Message ?? "The device is gone."),
            ShadowStatus.Forbidden => CoapResponse.Text(CoapCode.Forbidden, outcome.Message ?? "Not allowed."),
            _ => BadRequest(outcome.Message ?? "The update is not valid."),
        };
    }
}
