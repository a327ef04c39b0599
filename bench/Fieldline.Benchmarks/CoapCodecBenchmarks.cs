using BenchmarkDotNet.Attributes;
using Fieldline.Coap.Protocol;

namespace Fieldline.Benchmarks;

/// <summary>The CoAP codec on a device's telemetry POST and the server's 2.04 answer.</summary>
[MemoryDiagnoser]
public class CoapCodecBenchmarks
{
    private readonly byte[] request;
    private readonly byte[] buffer = new byte[1152];

    public CoapCodecBenchmarks()
    {
        // CON POST /api/v1/{token}/telemetry, Content-Format 50 (JSON), a 4-byte token and a 70-byte payload.
        var writer = new CoapMessageWriter(buffer, CoapMessageType.Confirmable, CoapCode.Post, 0x1234, [1, 2, 3, 4]);
        writer.WriteOption(CoapOptionNumber.UriPath, "api");
        writer.WriteOption(CoapOptionNumber.UriPath, "v1");
        writer.WriteOption(CoapOptionNumber.UriPath, "A1b2C3d4E5f6G7h8I9j0K1l2");
        writer.WriteOption(CoapOptionNumber.UriPath, "telemetry");
        writer.WriteOption(CoapOptionNumber.ContentFormat, 50u);
        writer.WritePayload("{\"ts\":1767225600000,\"values\":{\"temperature\":21.5,\"humidity\":40.2}}"u8);
        request = writer.Written.ToArray();
    }

    /// <summary>Parse the request and walk its options (what routing needs).</summary>
    [Benchmark]
    public int ParseRequest()
    {
        CoapMessageView.TryParse(request, out var message);
        var segments = 0;
        foreach (var option in message.GetOptions())
        {
            segments += option.Number == CoapOptionNumber.UriPath ? 1 : 0;
        }

        return segments + message.Payload.Length;
    }

    /// <summary>Write the piggybacked 2.04 Changed answer.</summary>
    [Benchmark]
    public int WriteResponse()
    {
        var writer = new CoapMessageWriter(buffer, CoapMessageType.Acknowledgement, CoapCode.Changed, 0x1234, [1, 2, 3, 4]);
        writer.WritePayload([]);
        return writer.Length;
    }
}
