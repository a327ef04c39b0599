using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Fieldline.Core.Devices;

/// <summary>The outcome of a certificate authentication: the status and, on success, the device the certificate is.</summary>
public readonly record struct DeviceCertificateAuthentication(DeviceAuthenticationStatus Status, string? DeviceId);

/// <content>Authentication by TLS client certificate instead of a token.</content>
public sealed partial class DeviceAuthenticator
{
    /// <summary>The extended key usage of TLS client certificates (id-kp-clientAuth).</summary>
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <summary>
    /// The certificate authorities whose client certificates name their device in the subject's CN. Null or empty
    /// turns that mapping off: without a trusted issuer, anyone could write any CN into a certificate.
    /// </summary>
    public X509Certificate2Collection? ClientCertificateAuthorities { get; init; }

    /// <summary>
    /// Authenticates a TLS client certificate (whose private key the TLS handshake has proven the client holds).
    /// It is a device's when its fingerprint is registered to the device (self-signed is fine), or when it chains
    /// to one of <see cref="ClientCertificateAuthorities"/> and its CN is a device id. Either way it must be
    /// within its validity period, and <paramref name="username"/>, when given, must be that device's id.
    /// Failures count against the source address (and the claimed device) like wrong tokens.
    /// </summary>
    public async ValueTask<DeviceCertificateAuthentication> AuthenticateCertificateAsync(X509Certificate2 certificate, string? username, string? sourceAddress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var source = sourceAddress ?? "unknown";
        if (_perSource.IsBlocked(source) || (username is not null && _perDevice.IsBlocked(username)))
        {
            LogThrottled(_logger, username ?? "(certificate)", source);
            return new(DeviceAuthenticationStatus.Throttled, null);
        }

        var fingerprint = DeviceCertificates.Fingerprint(certificate);
        var now = _timeProvider.GetUtcNow();
        DeviceCredentials? credentials = null;
        if (IsWithinValidity(certificate, now))
        {
            credentials = await _registry.FindByCertificateFingerprintAsync(fingerprint, cancellationToken).ConfigureAwait(false);
            if (credentials is null && CommonName(certificate) is { } commonName && ChainsToClientAuthority(certificate, now))
            {
                credentials = await _registry.GetCredentialsAsync(commonName, cancellationToken).ConfigureAwait(false);
            }
        }

        if (credentials is null || (username is not null && !string.Equals(username, credentials.DeviceId, StringComparison.Ordinal)))
        {
            _perSource.RecordFailure(source);
            if (username is not null)
            {
                _perDevice.RecordFailure(username);
            }

            LogCertificateRefused(_logger, fingerprint, username ?? credentials?.DeviceId ?? "(none)", source);
            return new(DeviceAuthenticationStatus.BadCredentials, null);
        }

        if (credentials.Status == DeviceStatus.Maintenance)
        {
            return new(DeviceAuthenticationStatus.NotAllowed, null);
        }

        _perDevice.Reset(credentials.DeviceId);
        return new(DeviceAuthenticationStatus.Success, credentials.DeviceId);
    }

    private static bool IsWithinValidity(X509Certificate2 certificate, DateTimeOffset now) =>
        certificate.NotBefore.ToUniversalTime() <= now.UtcDateTime && now.UtcDateTime <= certificate.NotAfter.ToUniversalTime();

    private static string? CommonName(X509Certificate2 certificate) =>
        certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false) is { Length: > 0 } name ? name : null;

    private bool ChainsToClientAuthority(X509Certificate2 certificate, DateTimeOffset now)
    {
        if (ClientCertificateAuthorities is not { Count: > 0 } authorities)
        {
            return false;
        }

        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.VerificationTime = now.UtcDateTime;
        policy.ApplicationPolicy.Add(ClientAuthentication);
        foreach (var authority in authorities)
        {
            // Roots anchor the chain; intermediates only help build it.
            (authority.SubjectName.RawData.AsSpan().SequenceEqual(authority.IssuerName.RawData) ? policy.CustomTrustStore : policy.ExtraStore).Add(authority);
        }

        try
        {
            return chain.Build(certificate);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    [LoggerMessage(LogLevel.Information, "Certificate authentication from {Source} failed: certificate {Fingerprint} is not one of device {DeviceId}'s")]
    private static partial void LogCertificateRefused(ILogger logger, string fingerprint, string deviceId, string source);
}
