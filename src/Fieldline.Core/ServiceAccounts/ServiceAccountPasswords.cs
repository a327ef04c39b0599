using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Fieldline.Core.ServiceAccounts;

/// <summary>A stored password: PBKDF2-HMAC-SHA256 of the password's UTF-8 bytes with its own random salt.</summary>
/// <param name="Salt">16 random bytes, different for every password set.</param>
/// <param name="Hash">The 32-byte derived key.</param>
/// <param name="Iterations">The iteration count it was derived with, kept so that the default can be raised later.</param>
public sealed record PasswordHash(byte[] Salt, byte[] Hash, int Iterations);

/// <summary>
/// Service account passwords. Unlike device tokens (random 256-bit values, see <see cref="Devices.DeviceTokens"/>),
/// a password may be chosen by a person, so it is stored with a per-account salt and a slow key derivation:
/// PBKDF2-HMAC-SHA256 with <see cref="Iterations"/> iterations (OWASP's 2023 recommendation). That costs about
/// 0.15 s of CPU per login, which is why failed logins are throttled before the hash is computed.
/// </summary>
public static class ServiceAccountPasswords
{
    /// <summary>Iterations for new hashes.</summary>
    public const int Iterations = 600_000;

    /// <summary>Shortest password a caller may choose, in characters.</summary>
    public const int MinimumLength = 16;

    /// <summary>Longest password, in characters; longer ones presented at login are refused without hashing.</summary>
    public const int MaximumLength = 256;

    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    /// <summary>A new random password: 256 bits, URL-safe base64 without padding (43 characters).</summary>
    public static string Generate() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>Why <paramref name="password"/> cannot be chosen, or null when it can.</summary>
    public static string? Check(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (password.Length is < MinimumLength or > MaximumLength)
        {
            return $"must be {MinimumLength} to {MaximumLength} characters";
        }

        // MQTT clients take passwords as command-line arguments and C strings; a control character could not be typed.
        return password.Any(char.IsControl) ? "must not contain control characters" : null;
    }

    /// <summary>Hashes a password with a new random salt.</summary>
    public static PasswordHash Hash(string password, int iterations = Iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, HashBytes);
        return new PasswordHash(salt, hash, iterations);
    }

    /// <summary>Whether the presented password (UTF-8) is the stored one; the comparison takes constant time.</summary>
    public static bool Verify(ReadOnlySpan<byte> passwordUtf8, PasswordHash stored)
    {
        ArgumentNullException.ThrowIfNull(stored);

        // A UTF-8 character is at most 4 bytes: anything longer cannot be a valid password and is not worth hashing.
        if (passwordUtf8.Length > MaximumLength * 4 || stored.Hash.Length != HashBytes || stored.Iterations < 1)
        {
            return false;
        }

        Span<byte> derived = stackalloc byte[HashBytes];
        Rfc2898DeriveBytes.Pbkdf2(passwordUtf8, stored.Salt, derived, stored.Iterations, HashAlgorithmName.SHA256);
        return CryptographicOperations.FixedTimeEquals(derived, stored.Hash);
    }
}
