using System.Net;
using Fieldline.Coap.Protocol;

namespace Fieldline.Coap.Server;

/// <summary>A request as a resource sees it: method, path, query, options and payload, copied out of the datagram.</summary>
public sealed class CoapRequest
{
    internal CoapRequest(CoapMessageView message, IPEndPoint remote)
    {
        Method = message.Code;
        Type = message.Type;
        MessageId = message.MessageId;
        Token = message.Token.ToArray();
        Remote = remote;
        Payload = message.Payload.ToArray();
        List<string> path = [];
        List<string> query = [];
        List<(int Number, byte[] Value)> options = [];
        foreach (var option in message.GetOptions())
        {
            switch (option.Number)
            {
                case CoapOptionNumber.UriPath:
                    path.Add(System.Text.Encoding.UTF8.GetString(option.Value));
                    break;
                case CoapOptionNumber.UriQuery:
                    query.Add(System.Text.Encoding.UTF8.GetString(option.Value));
                    break;
                default:
                    options.Add((option.Number, option.Value.ToArray()));
                    break;
            }
        }

        Path = path;
        PathText = string.Join('/', path);
        Query = query;
        Options = options;
        ContentFormat = message.TryGetUInt(CoapOptionNumber.ContentFormat, out var format) ? (int)format : null;
        Accept = message.TryGetUInt(CoapOptionNumber.Accept, out var accept) ? (int)accept : null;
    }

    private CoapRequest(CoapRequest request, byte[] payload)
    {
        Method = request.Method;
        Type = request.Type;
        MessageId = request.MessageId;
        Token = request.Token;
        Remote = request.Remote;
        Path = request.Path;
        PathText = request.PathText;
        Query = request.Query;
        Options = request.Options;
        ContentFormat = request.ContentFormat;
        Accept = request.Accept;
        Payload = payload;
    }

    public CoapCode Method { get; }

    public CoapMessageType Type { get; }

    public ushort MessageId { get; }

    public byte[] Token { get; }

    public IPEndPoint Remote { get; }

    /// <summary>The Uri-Path segments.</summary>
    public IReadOnlyList<string> Path { get; }

    /// <summary>The path's segments joined by <c>/</c>, without a leading one.</summary>
    public string PathText { get; }

    /// <summary>
    /// Whatever the resource keeps with this request, as <c>HttpContext.Items</c> does (the device a token names).
    /// An observation keeps its request, so what was set when it registered is there at each notification.
    /// </summary>
    public object? State { get; set; }

    /// <summary>The Uri-Query arguments (<c>name=value</c> or <c>name</c>).</summary>
    public IReadOnlyList<string> Query { get; }

    /// <summary>The options other than Uri-Path and Uri-Query, in order.</summary>
    public IReadOnlyList<(int Number, byte[] Value)> Options { get; }

    public int? ContentFormat { get; }

    public int? Accept { get; }

    public byte[] Payload { get; }

    /// <summary>The same request with the whole body of a block-wise transfer.</summary>
    internal CoapRequest WithPayload(byte[] payload) => new(this, payload);

    /// <summary>The value of a query argument <c>name=value</c>; null when absent.</summary>
    public string? QueryValue(string name)
    {
        foreach (var argument in Query)
        {
            if (argument.Length > name.Length && argument[name.Length] == '=' && argument.StartsWith(name, StringComparison.Ordinal))
            {
                return argument[(name.Length + 1)..];
            }
        }

        return null;
    }
}

/// <summary>What a resource answers: a response code, optionally a content format and a payload, and more options.</summary>
public sealed record CoapResponse(CoapCode Code, int? ContentFormat = null, byte[]? Payload = null)
{
    /// <summary>Options besides Content-Format, in ascending number.</summary>
    public IReadOnlyList<(int Number, byte[] Value)> Options { get; init; } = [];

    /// <summary>
    /// Called once the client is known to have this response: when it goes piggybacked on the ACK of the request,
    /// or when the Confirmable message that carries it (a separate response, a notification) is acknowledged.
    /// Never called for a Non-confirmable message. Must not block.
    /// </summary>
    public Action? Delivered { get; init; }

    /// <summary>A response with a UTF-8 text payload (content format 0, text/plain), as diagnostic payloads are (§5.5.2).</summary>
    public static CoapResponse Text(CoapCode code, string text) =>
        new(code, CoapContentFormat.TextPlain, System.Text.Encoding.UTF8.GetBytes(text));
}

/// <summary>Content-Format numbers of the CoAP registry that Fieldline uses.</summary>
public static class CoapContentFormat
{
    public const int TextPlain = 0;
    public const int LinkFormat = 40;
    public const int OctetStream = 42;
    public const int Json = 50;
    public const int Cbor = 60;
    public const int SenmlJson = 110;
    public const int SenmlCbor = 112;
}
