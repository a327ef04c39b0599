using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Fieldline.Hosting;
using Microsoft.Extensions.Options;

namespace Fieldline.Broker;

/// <summary>
/// The certificates of the MQTT TLS listener: the server's (configured, or the generated development certificate)
/// and the authorities whose client certificates name their device by CN.
/// </summary>
internal sealed class MqttTlsCertificates : IDisposable
{
    private MqttTlsCertificates(X509Certificate2 serverCertificate, string? certificatePath, bool isDevelopmentCertificate, X509Certificate2Collection? clientAuthorities)
    {
        ServerCertificate = serverCertificate;
        CertificatePath = certificatePath;
        IsDevelopmentCertificate = isDevelopmentCertificate;
        ClientAuthorities = clientAuthorities;
    }

    public X509Certificate2 ServerCertificate { get; }

    /// <summary>The file the server certificate was read from (PEM for the development certificate).</summary>
    public string? CertificatePath { get; }

    /// <summary>Whether the server certificate is the generated, self-signed one.</summary>
    public bool IsDevelopmentCertificate { get; }

    /// <summary>The configured client CA certificates; null when CN mapping is off.</summary>
    public X509Certificate2Collection? ClientAuthorities { get; }

    /// <summary>The server certificate's SHA-256 fingerprint as <c>openssl x509 -noout -fingerprint -sha256</c> prints it.</summary>
    public string Fingerprint => string.Join(':', ServerCertificate.GetCertHashString(HashAlgorithmName.SHA256).Chunk(2).Select(pair => new string(pair)));

    /// <summary>
    /// Loads what <paramref name="options"/> configure, or the development certificate. A file that cannot be read
    /// is a configuration error (<see cref="OptionsValidationException"/>) naming the key.
    /// </summary>
    public static MqttTlsCertificates Load(FieldlineOptions options, TimeProvider timeProvider)
    {
        var tls = options.Mqtt.Tls;
        var clientAuthorities = string.IsNullOrEmpty(tls.ClientCaPath) ? null : LoadAuthorities(tls.ClientCaPath);
        if (string.IsNullOrEmpty(tls.CertificatePath))
        {
            var (certificate, path, _) = DevelopmentCertificate.LoadOrCreate(options.DataDir, timeProvider);
            return new MqttTlsCertificates(ForTls(certificate), path, isDevelopmentCertificate: true, clientAuthorities);
        }

        return new MqttTlsCertificates(ForTls(LoadServerCertificate(tls)), Path.GetFullPath(tls.CertificatePath), isDevelopmentCertificate: false, clientAuthorities);
    }

    public void Dispose()
    {
        ServerCertificate.Dispose();
        foreach (var authority in ClientAuthorities ?? [])
        {
            authority.Dispose();
        }
    }

    private static X509Certificate2 LoadServerCertificate(FieldlineMqttTlsOptions tls)
    {
        var path = tls.CertificatePath!;
        var password = string.IsNullOrEmpty(tls.CertificatePassword) ? null : tls.CertificatePassword;
        X509Certificate2 certificate;
        try
        {
            if (!string.IsNullOrEmpty(tls.KeyPath))
            {
                certificate = password is null
                    ? X509Certificate2.CreateFromPemFile(path, tls.KeyPath)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, password, tls.KeyPath);
            }
            else if (File.ReadAllText(path).Contains("-----BEGIN", StringComparison.Ordinal))
            {
                // PEM with the key in the same file.
                certificate = password is null
                    ? X509Certificate2.CreateFromPemFile(path)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, password);
            }
            else
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
            }
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw Invalid($"Mqtt:Tls:CertificatePath '{path}' could not be loaded{(string.IsNullOrEmpty(tls.KeyPath) ? string.Empty : $" with Mqtt:Tls:KeyPath '{tls.KeyPath}'")}: {e.Message}");
        }

        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw Invalid($"Mqtt:Tls:CertificatePath '{path}' has no private key; give it in the same file or with Mqtt:Tls:KeyPath.");
        }

        return certificate;
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Invalid($"Mqtt:Tls:ClientCaPath '{path}' could not be loaded: {e.Message}");
        }

        return authorities.Count > 0 ? authorities : throw Invalid($"Mqtt:Tls:ClientCaPath '{path}' holds no PEM certificate.");
    }

    /// <summary>SChannel cannot use an ephemeral key such as a PEM file's; elsewhere the certificate is used as loaded.</summary>
    private static X509Certificate2 ForTls(X509Certificate2 certificate)
    {
        if (!OperatingSystem.IsWindows())
        {
            return certificate;
        }

        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), password: null);
        }
    }

    private static OptionsValidationException Invalid(string failure) =>
        new(Microsoft.Extensions.Options.Options.DefaultName, typeof(FieldlineOptions), [failure]);
}
