using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Fieldline.Broker;

/// <summary>
/// The self-signed certificate the MQTT TLS listener uses when none is configured: CN=localhost for localhost,
/// 127.0.0.1 and ::1, ECDSA P-256, valid two years. Generated on first start into <c>tls/</c> in the data
/// directory (the key readable by the owner only) and reused until it is about to expire, so that clients can trust
/// it once with <c>--cafile</c>.
/// </summary>
internal static class DevelopmentCertificate
{
    public const string DirectoryName = "tls";
    public const string CertificateFileName = "mqtt-dev-cert.pem";
    public const string KeyFileName = "mqtt-dev-key.pem";

    /// <summary>A certificate this close to its end is replaced at start rather than left to expire while running.</summary>
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(7);

    private static readonly TimeSpan Validity = TimeSpan.FromDays(730);

    /// <summary>The certificate in <paramref name="dataDir"/>, created first when missing, unreadable or nearly expired.</summary>
    public static (X509Certificate2 Certificate, string CertificatePath, bool Created) LoadOrCreate(string dataDir, TimeProvider timeProvider)
    {
        var directory = Path.Combine(Path.GetFullPath(dataDir), DirectoryName);
        var certificatePath = Path.Combine(directory, CertificateFileName);
        var keyPath = Path.Combine(directory, KeyFileName);
        var now = timeProvider.GetUtcNow();
        if (TryLoad(certificatePath, keyPath, now) is { } existing)
        {
            return (existing, certificatePath, false);
        }

        Create(directory, certificatePath, keyPath, now);
        return (X509Certificate2.CreateFromPemFile(certificatePath, keyPath), certificatePath, true);
    }

    private static X509Certificate2? TryLoad(string certificatePath, string keyPath, DateTimeOffset now)
    {
        if (!File.Exists(certificatePath) || !File.Exists(keyPath))
        {
            return null;
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (CryptographicException)
        {
            // Half-written or edited by hand: a new pair replaces it.
            return null;
        }

        if (certificate.NotAfter.ToUniversalTime() - RenewBefore < now.UtcDateTime)
        {
            certificate.Dispose();
            return null;
        }

        return certificate;
    }

    private static void Create(string directory, string certificatePath, string keyPath, DateTimeOffset now)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));

        // Backdated a little: a client whose clock runs slightly behind must not see a certificate from the future.
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now + Validity);

        // The key first, then the certificate: a crash in between leaves no certificate, and the next start makes a new pair.
        WriteAtomically(keyPath, key.ExportPkcs8PrivateKeyPem(), ownerOnly: true);
        WriteAtomically(certificatePath, certificate.ExportCertificatePem(), ownerOnly: false);
    }

    /// <summary>Writes a temporary file and renames it over the target, so that readers never see half a file.</summary>
    private static void WriteAtomically(string path, string content, bool ownerOnly)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = ownerOnly
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(content);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }

            if (ownerOnly && !OperatingSystem.IsWindows())
            {
                // The create mode is filtered by the umask; this states the intent whatever the umask.
                File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
