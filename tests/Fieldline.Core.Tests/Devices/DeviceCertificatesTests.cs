using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Fieldline.Core.Devices;

namespace Fieldline.Core.Tests.Devices;

public sealed class DeviceCertificatesTests
{
    private const string Lower = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    [Theory]
    [InlineData(Lower)]
    [InlineData("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08")]
    [InlineData("9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08")]
    public void A_fingerprint_in_hex_or_OpenSSL_form_is_read_as_lowercase_hex(string text)
    {
        Assert.True(DeviceCertificates.TryNormalizeFingerprint(text, out var fingerprint), $"'{text}' should be accepted");
        Assert.Equal(Lower, fingerprint);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("9f86d0")]
    [InlineData(Lower + "00")]
    [InlineData("9g86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    [InlineData("9F-86-D0-81-88-4C-7D-65-9A-2F-EA-A0-C5-5A-D0-15-A3-BF-4F-1B-2B-0B-82-2C-D1-5D-6C-15-B0-F0-0A-08")]
    [InlineData("9F:86D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08:")]
    [InlineData(" 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0")]
    public void Anything_else_is_not_a_fingerprint(string? text)
    {
        Assert.False(DeviceCertificates.TryNormalizeFingerprint(text, out var fingerprint), $"'{text}' should be refused, was read as '{fingerprint}'");
    }

    [Fact]
    public void The_fingerprint_of_a_certificate_is_the_SHA_256_of_its_DER_encoding()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var certificate = new CertificateRequest("CN=dev-1", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));

        Assert.Equal(certificate.GetCertHashString(HashAlgorithmName.SHA256).ToLowerInvariant(), DeviceCertificates.Fingerprint(certificate));
    }
}
