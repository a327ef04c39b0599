using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Coap.Protocol;
using Fieldline.Coap.Server;

namespace Fieldline.Coap.Tests.Server;

/// <summary>
/// The seed's <c>SensorResource</c> (edge-computing-iot-platform.md §3.2) written on the library: GET answers
/// <c>{"sensor_id","value","unit","timestamp"}</c> in JSON and registers an observer on Observe 0; PUT of
/// <c>{"value":…}</c> sets the value, answers 2.04 and notifies the observers; a PUT that is not such JSON fails.
/// </summary>
public sealed class SeedSensorResourceTests
{
    [Fact]
    public async Task The_seeds_sensor_resource_answers_json_and_a_put_notifies_libcoaps_observer()
    {
        var sensor = new SensorResource("temp-1");
        await using var server = CoapTestServer.Start([sensor]);
        var url = $"coap://127.0.0.1:{server.Port}/sensors/temp-1";

        var observing = CoapTestServer.RunCoapClientAsync("-m", "get", "-s", "4", "-B", "6", url);
        await Poll.UntilAsync(() => server.Server.ObserverCount == 1, "coap-client observing the sensor");
        var put = await CoapTestServer.RunCoapClientAsync("-m", "put", "-t", "50", "-e", """{"value":23.5}""", url);
        var bad = await CoapTestServer.RunCoapClientAsync("-m", "put", "-t", "50", "-e", """{"value":"warm"}""", url);
        var (_, output) = await observing;

        var documents = output.Trim().Replace("}{", "}\n{", StringComparison.Ordinal).Split('\n');
        Assert.Equal(2, documents.Length); // the answer, then the notification of the PUT (not of the bad one)
        var first = JsonNode.Parse(documents[0])!;
        var second = JsonNode.Parse(documents[1])!;
        Assert.Equal("temp-1", (string?)first["sensor_id"]);
        Assert.Equal(20.0, (double)first["value"]!);
        Assert.Equal("°C", (string?)first["unit"]);
        Assert.Equal(23.5, (double)second["value"]!);
        Assert.Equal("", put.Output.Trim()); // 2.04 Changed, no payload
        Assert.StartsWith("4.00", bad.Output.Trim(), StringComparison.Ordinal);
    }

    /// <summary>The seed's resource: one sensor's last value, observable, set by PUT.</summary>
    private sealed class SensorResource(string sensorId) : CoapResource("/sensors/" + sensorId)
    {
        private double _value = 20.0;

        public override CoapLinkAttributes? Link { get; } = new("sensor", "sensor", CoapContentFormat.Json, Observable: true);

        public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get, CoapCode.Put];

        public override IReadOnlyList<int>? AcceptedContentFormats { get; } = [CoapContentFormat.Json];

        public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
        {
            if (request.Method == CoapCode.Put)
            {
                if (JsonNode.Parse(request.Payload) is not JsonObject { } body || body["value"] is not JsonValue value || !value.TryGetValue<double>(out var number))
                {
                    return ValueTask.FromResult(CoapResponse.Text(CoapCode.BadRequest, "invalid payload: expected {\"value\": number}"));
                }

                Volatile.Write(ref _value, number);
                NotifyObservers();
                return ValueTask.FromResult(new CoapResponse(CoapCode.Changed));
            }

            var document = new JsonObject
            {
                ["sensor_id"] = sensorId,
                ["value"] = Volatile.Read(ref _value),
                ["unit"] = "°C",
                ["timestamp"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            };
            return ValueTask.FromResult(new CoapResponse(CoapCode.Content, CoapContentFormat.Json, Encoding.UTF8.GetBytes(document.ToJsonString())));
        }
    }
}
