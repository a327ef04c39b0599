namespace Fieldline.Core.Security;

/// <summary>
/// Checks a presented admin API key. The REST API uses it for every /api request; the broker
/// integration reuses it for an operator login, so there is one admin secret per installation.
/// </summary>
public interface IAdminKeyVerifier
{
    /// <summary>True when <paramref name="keyUtf8"/> is the admin key (constant-time on the hashes).</summary>
    bool Verify(ReadOnlySpan<byte> keyUtf8);

    /// <summary>
    /// A short value derived from the current key (not the key, nor enough to find it) that changes whenever the key
    /// changes: sessions signed in under another stamp, such as the console's, are ended. Null before the key is set.
    /// </summary>
    string? KeyStamp { get; }
}
