using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Fieldline.Core.Devices;

/// <summary>
/// Certificate fingerprints as the registry stores them: SHA-256 of the DER certificate in lowercase hex, the
/// value <c>openssl x509 -noout -fingerprint -sha256</c> prints without its colons.
/// </summary>
public static class DeviceCertificates
{
    /// <summary>Characters of a fingerprint in its stored form.</summary>
    public const int FingerprintLength = 64;

    /// <summary>The fingerprint of a certificate in its stored form.</summary>
    public static string Fingerprint(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.RawDataMemory.Span));
    }

    /// <summary>
    /// Reads a fingerprint given as 64 hex digits, or as 32 colon-separated pairs as OpenSSL prints it, in either
    /// case; false for anything else.
    /// </summary>
    public static bool TryNormalizeFingerprint(string? text, [NotNullWhen(true)] out string? fingerprint)
    {
        fingerprint = null;
        if (text is null)
        {
            return false;
        }

        // 32 pairs and 31 colons.
        var digits = text.Length == (FingerprintLength / 2 * 3) - 1 ? RemovePairSeparators(text) : text;
        if (digits is not { Length: FingerprintLength } || !digits.All(char.IsAsciiHexDigit))
        {
            return false;
        }

        fingerprint = digits.ToLowerInvariant();
        return true;
    }

    private static string? RemovePairSeparators(string text)
    {
        for (var i = 2; i < text.Length; i += 3)
        {
            if (text[i] != ':')
            {
                return null;
            }
        }

        return text.Replace(":", string.Empty, StringComparison.Ordinal);
    }
}
