using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;
using Fieldline.Core.Telemetry;

namespace Fieldline.CoapApi;

/// <summary>
/// <c>POST /api/v1/{token}/telemetry</c>: the same payloads as MQTT telemetry (JSON, content format 50 or none),
/// and SenML in JSON (110) or CBOR (112). The 2.04 follows the durable write of every point, as PUBACK does; a payload
/// that does not parse gets 4.00 saying why, and none of its points is kept.
/// </summary>
internal sealed class DeviceTelemetryResource(CoapDeviceSessions sessions, TelemetryIngest ingest) : DeviceCoapResource("telemetry", sessions)
{
    public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Post];

    public override IReadOnlyList<int>? AcceptedContentFormats { get; } = [CoapContentFormat.Json, CoapContentFormat.SenmlJson, CoapContentFormat.SenmlCbor];

    protected override async ValueTask<CoapResponse> HandleDeviceAsync(string deviceId, CoapRequest request, CancellationToken cancellationToken)
    {
        var format = request.ContentFormat switch
        {
            CoapContentFormat.SenmlJson => TelemetryPayloadFormat.SenmlJson,
            CoapContentFormat.SenmlCbor => TelemetryPayloadFormat.SenmlCbor,
            _ => TelemetryPayloadFormat.Json,
        };
        if (!ingest.TryIngest(deviceId, request.Payload, format, out var durable, out var error))
        {
            return BadRequest(error ?? "The payload is not valid telemetry.");
        }

        // Not cancellable: the pipeline completes every batch, at shutdown too, and the answer must follow the write.
        await durable!.ConfigureAwait(false);
        return new CoapResponse(CoapCode.Changed);
    }
}
