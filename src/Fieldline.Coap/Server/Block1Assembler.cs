using System.Collections.Concurrent;
using System.Net;
using Fieldline.Coap.Protocol;

namespace Fieldline.Coap.Server;

/// <summary>
/// Puts together request bodies sent in Block1 blocks (RFC 7959 §2.5): each block but the last is answered 2.31
/// Continue; blocks must come in order (else 4.08 Request Entity Incomplete); the last one hands the resource the
/// whole body. A body is identified by the client's endpoint and the request's path, and forgotten after
/// EXCHANGE_LIFETIME without a new block.
/// </summary>
internal sealed class Block1Assembler(CoapServerOptions options, TimeProvider timeProvider)
{
    private readonly ConcurrentDictionary<(IPEndPoint Remote, string Path), Body> _bodies = new();

    /// <summary>
    /// Null when the request is not block-wise. Otherwise either the answer to send now (2.31, 4.08, 4.13) or, for the
    /// last block, the request with the whole body and the Block1 value to echo.
    /// </summary>
    public (CoapResponse? Answer, CoapRequest? Whole, byte[]? Echo)? Accept(CoapRequest request)
    {
        var option = request.Options.FirstOrDefault(o => o.Number == CoapOptionNumber.Block1);
        if (option.Value is null)
        {
            return null;
        }

        if (!CoapOption.TryReadUInt(option.Value, out var value) || !CoapBlock.TryParse(value, out var block))
        {
            return (CoapResponse.Text(CoapCode.BadOption, "The Block1 option is not valid."), null, null);
        }

        var key = (request.Remote, string.Join('/', request.Path));
        var now = timeProvider.GetTimestamp();
        if (block.Number == 0)
        {
            _bodies[key] = new Body(now);
        }

        if (!_bodies.TryGetValue(key, out var body) || timeProvider.GetElapsedTime(body.LastBlock, now) > options.ExchangeLifetime
            || body.Content.Length != block.Offset || (block.More && request.Payload.Length != block.Size))
        {
            _bodies.TryRemove(key, out _);
            return (CoapResponse.Text(CoapCode.RequestEntityIncomplete, $"Block {block.Number} does not follow the blocks received; start again at block 0."), null, null);
        }

        if (body.Content.Length + request.Payload.Length > options.MaximumBodySize)
        {
            _bodies.TryRemove(key, out _);
            var tooLarge = CoapResponse.Text(CoapCode.RequestEntityTooLarge, $"A request body may be at most {options.MaximumBodySize} bytes.") with
            {
                Options = [(CoapOptionNumber.Size1, CoapOption.ToBytes((uint)options.MaximumBodySize))],
            };
            return (tooLarge, null, null);
        }

        body.Content.Write(request.Payload);
        body.LastBlock = now;
        var echo = CoapOption.ToBytes(block.ToUInt32());
        if (block.More)
        {
            return (new CoapResponse(CoapCode.Continue) { Options = [(CoapOptionNumber.Block1, echo)] }, null, null);
        }

        _bodies.TryRemove(key, out _);
        return (null, request.WithPayload(body.Content.ToArray()), echo);
    }

    private sealed class Body(long lastBlock)
    {
        public MemoryStream Content { get; } = new();

        public long LastBlock { get; set; } = lastBlock;
    }
}
