using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Fieldline.Core.Devices;

/// <summary>
/// Device tokens and API keys: 256 random bits, shown once, stored as SHA-256. A plain hash (no salt,
/// no stretching) is enough because the secret is a uniformly random 256-bit value, not a password a
/// person chose: there is no dictionary to attack, and authentication stays cheap on the hot connect path.
/// </summary>
public static class DeviceTokens
{
    /// <summary>A new random token, URL-safe base64 without padding (43 characters).</summary>
    public static string Generate() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>SHA-256 of the token's UTF-8 bytes.</summary>
    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    /// <summary>Constant-time comparison of a presented token against a stored hash.</summary>
    public static bool Verify(ReadOnlySpan<byte> tokenUtf8, ReadOnlySpan<byte> storedHash)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(tokenUtf8, hash);
        return CryptographicOperations.FixedTimeEquals(hash, storedHash);
    }
}
