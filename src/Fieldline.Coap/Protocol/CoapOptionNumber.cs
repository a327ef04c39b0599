namespace Fieldline.Coap.Protocol;

/// <summary>
/// The option numbers of RFC 7252 §5.10 and §12.2, Observe (RFC 7641) and the block options (RFC 7959). An odd number
/// is critical: a recipient that does not understand it must reject the message (§5.4.1).
/// </summary>
public static class CoapOptionNumber
{
    public const int IfMatch = 1;
    public const int UriHost = 3;
    public const int ETag = 4;
    public const int IfNoneMatch = 5;
    public const int Observe = 6;
    public const int UriPort = 7;
    public const int LocationPath = 8;
    public const int UriPath = 11;
    public const int ContentFormat = 12;
    public const int MaxAge = 14;
    public const int UriQuery = 15;
    public const int Accept = 17;
    public const int LocationQuery = 20;
    public const int Block2 = 23;
    public const int Block1 = 27;
    public const int Size2 = 28;
    public const int ProxyUri = 35;
    public const int ProxyScheme = 39;
    public const int Size1 = 60;

    /// <summary>Whether an option must be understood (odd numbers, §5.4.1).</summary>
    public static bool IsCritical(int number) => (number & 1) != 0;

    /// <summary>
    /// The lengths a value of a known option may have (§5.10, RFC 7641 §2, RFC 7959 §2.1); false for an unknown
    /// option. A value outside them is treated as an unrecognized option (§5.4.3).
    /// </summary>
    public static bool TryGetLengthRange(int number, out int minimum, out int maximum)
    {
        (minimum, maximum) = number switch
        {
            IfMatch => (0, 8),
            UriHost => (1, 255),
            ETag => (1, 8),
            IfNoneMatch => (0, 0),
            Observe => (0, 3),
            UriPort => (0, 2),
            LocationPath => (0, 255),
            UriPath => (0, 255),
            ContentFormat => (0, 2),
            MaxAge => (0, 4),
            UriQuery => (0, 255),
            Accept => (0, 2),
            LocationQuery => (0, 255),
            Block2 => (0, 3),
            Block1 => (0, 3),
            Size2 => (0, 4),
            ProxyUri => (1, 1034),
            ProxyScheme => (1, 255),
            Size1 => (0, 4),
            _ => (-1, -1),
        };
        return minimum >= 0;
    }
}
