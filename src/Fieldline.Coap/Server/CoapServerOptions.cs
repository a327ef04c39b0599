using System.Net;

namespace Fieldline.Coap.Server;

/// <summary>How a <see cref="CoapServer"/> listens and paces its exchanges (RFC 7252 §4.8 names).</summary>
public sealed class CoapServerOptions
{
    /// <summary>The address to bind; IPv6Any binds dual-mode (IPv4 and IPv6).</summary>
    public IPAddress Address { get; set; } = IPAddress.IPv6Any;

    /// <summary>UDP port; 0 takes a free one (see <see cref="CoapServer.LocalEndPoint"/>).</summary>
    public int Port { get; set; } = 5683;

    /// <summary>Largest datagram accepted and sent. RFC 7252 §4.6 suggests staying within 1,152 bytes of message.</summary>
    public int MaximumMessageSize { get; set; } = 1152;

    /// <summary>How long a Confirmable request may run before it is acknowledged empty and answered separately (§5.2.2).</summary>
    public TimeSpan SeparateResponseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a request's message id is remembered to recognise retransmissions (EXCHANGE_LIFETIME, §4.8.2).</summary>
    public TimeSpan ExchangeLifetime { get; set; } = TimeSpan.FromSeconds(247);

    /// <summary>
    /// Most exchanges remembered for recognising retransmissions; beyond it the oldest are forgotten before their
    /// EXCHANGE_LIFETIME. About 200 bytes each: the default bounds it near 50 MB, and still covers the first three
    /// retransmissions (21 s) of a client at 10,000 requests a second.
    /// </summary>
    public int MaximumExchanges { get; set; } = 250_000;

    /// <summary>ACK_TIMEOUT (§4.8): the least time before a Confirmable message is sent again.</summary>
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>ACK_RANDOM_FACTOR (§4.8): the first timeout is drawn between ACK_TIMEOUT and this many times it.</summary>
    public double AckRandomFactor { get; set; } = 1.5;

    /// <summary>MAX_RETRANSMIT (§4.8): how often a Confirmable message is sent again before it is given up.</summary>
    public int MaxRetransmit { get; set; } = 4;

    /// <summary>
    /// How often a notification is sent Confirmable, so that observers that went away are noticed (RFC 7641 §4.5: at
    /// least every 24 hours); the others are Non-confirmable. Zero makes every notification Confirmable.
    /// </summary>
    public TimeSpan ObserveConfirmableInterval { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Largest request body put together from Block1 blocks (4.13 with Size1 beyond it).</summary>
    public int MaximumBodySize { get; set; } = 1024 * 1024;
}
