using System.Globalization;

namespace Fieldline.Coap.Protocol;

/// <summary>
/// A CoAP code (RFC 7252 §3, §12.1): a 3-bit class and a 5-bit detail, written <c>c.dd</c>. Class 0 holds the
/// methods (and 0.00, the empty message), classes 2, 4 and 5 the responses.
/// </summary>
/// <param name="Value">The code as it is on the wire.</param>
public readonly record struct CoapCode(byte Value)
{
    public static readonly CoapCode Empty = new(0, 0);
    public static readonly CoapCode Get = new(0, 1);
    public static readonly CoapCode Post = new(0, 2);
    public static readonly CoapCode Put = new(0, 3);
    public static readonly CoapCode Delete = new(0, 4);

    public static readonly CoapCode Created = new(2, 1);
    public static readonly CoapCode Deleted = new(2, 2);
    public static readonly CoapCode Valid = new(2, 3);
    public static readonly CoapCode Changed = new(2, 4);
    public static readonly CoapCode Content = new(2, 5);
    public static readonly CoapCode Continue = new(2, 31);

    public static readonly CoapCode BadRequest = new(4, 0);
    public static readonly CoapCode Unauthorized = new(4, 1);
    public static readonly CoapCode BadOption = new(4, 2);
    public static readonly CoapCode Forbidden = new(4, 3);
    public static readonly CoapCode NotFound = new(4, 4);
    public static readonly CoapCode MethodNotAllowed = new(4, 5);
    public static readonly CoapCode NotAcceptable = new(4, 6);
    public static readonly CoapCode RequestEntityIncomplete = new(4, 8);
    public static readonly CoapCode PreconditionFailed = new(4, 12);
    public static readonly CoapCode RequestEntityTooLarge = new(4, 13);
    public static readonly CoapCode UnsupportedContentFormat = new(4, 15);
    public static readonly CoapCode TooManyRequests = new(4, 29);

    public static readonly CoapCode InternalServerError = new(5, 0);
    public static readonly CoapCode NotImplemented = new(5, 1);
    public static readonly CoapCode ServiceUnavailable = new(5, 3);

    /// <summary>A code from its class (0–7) and detail (0–31).</summary>
    public CoapCode(int codeClass, int detail)
        : this(Pack(codeClass, detail))
    {
    }

    /// <summary>The class: 0 request, 2 success, 4 client error, 5 server error.</summary>
    public int Class => Value >> 5;

    /// <summary>The detail within the class.</summary>
    public int Detail => Value & 0x1F;

    /// <summary>Whether this is 0.00, the code of an empty message.</summary>
    public bool IsEmpty => Value == 0;

    /// <summary>Whether this is a request method (0.01–0.31).</summary>
    public bool IsRequest => Class == 0 && Value != 0;

    /// <summary>Whether this is a response (classes 2 to 5).</summary>
    public bool IsResponse => Class is >= 2 and <= 5;

    /// <summary><c>c.dd</c>, as the RFC writes codes: 2.05, 4.04.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Class}.{Detail:D2}");

    private static byte Pack(int codeClass, int detail)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)codeClass, 7u, nameof(codeClass));
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)detail, 31u, nameof(detail));
        return (byte)((codeClass << 5) | detail);
    }
}
