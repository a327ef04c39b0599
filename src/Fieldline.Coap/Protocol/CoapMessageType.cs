namespace Fieldline.Coap.Protocol;

/// <summary>The message type of RFC 7252 §3 (the header's T field).</summary>
public enum CoapMessageType : byte
{
    /// <summary>CON: needs an acknowledgement; retransmitted until it gets one.</summary>
    Confirmable = 0,

    /// <summary>NON: no acknowledgement.</summary>
    NonConfirmable = 1,

    /// <summary>ACK: acknowledges a CON, may carry a piggybacked response.</summary>
    Acknowledgement = 2,

    /// <summary>RST: the receiver could not process a message (or no longer wants notifications).</summary>
    Reset = 3,
}
