namespace Fieldline.Core.Security;

/// <summary>
/// Checks a presented admin API key. The REST API uses it for every /api request; the broker
/// integration reuses it for an operator login, so there is one admin secret per installation.
/// </summary>
public interface IAdminKeyVerifier
{
    /// <summary>True when <paramref name="keyUtf8"/> is the admin key (constant-time on the hashes).</summary>
    bool Verify(ReadOnlySpan<byte> keyUtf8);
}
