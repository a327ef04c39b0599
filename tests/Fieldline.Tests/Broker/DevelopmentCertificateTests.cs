using Fieldline.Broker;
using Fieldline.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Tests.Broker;

/// <summary>When the development certificate is reused and when it is made again.</summary>
public sealed class DevelopmentCertificateTests : IDisposable
{
    private readonly string _dataDir = TestEnvironment.NewTempDirectory();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    [Fact]
    public void It_is_reused_while_valid_and_replaced_in_its_last_week()
    {
        var (first, path, created) = DevelopmentCertificate.LoadOrCreate(_dataDir, _time);
        using var _first = first;
        Assert.True(created, "the first start makes the certificate");
        Assert.Equal(Path.Combine(_dataDir, "tls", "mqtt-dev-cert.pem"), path);

        _time.Advance(TimeSpan.FromDays(700));
        var (reused, _, createdAgain) = DevelopmentCertificate.LoadOrCreate(_dataDir, _time);
        using var _reused = reused;
        Assert.False(createdAgain, "a certificate with a month left is reused");
        Assert.Equal(first.Thumbprint, reused.Thumbprint);

        _time.Advance(TimeSpan.FromDays(25));
        var (renewed, _, renewedCreated) = DevelopmentCertificate.LoadOrCreate(_dataDir, _time);
        using var _renewed = renewed;
        Assert.True(renewedCreated, "a certificate with less than a week left is replaced");
        Assert.NotEqual(first.Thumbprint, renewed.Thumbprint);
        Assert.True(renewed.NotAfter.ToUniversalTime() > _time.GetUtcNow().UtcDateTime.AddDays(700), $"the new certificate runs two years from now; it ends {renewed.NotAfter:O}");
        Assert.True(renewed.HasPrivateKey);
    }

    [Fact]
    public void A_damaged_key_file_is_replaced_by_a_new_pair()
    {
        var (first, _, _) = DevelopmentCertificate.LoadOrCreate(_dataDir, _time);
        using var _first = first;
        File.WriteAllText(Path.Combine(_dataDir, "tls", "mqtt-dev-key.pem"), "not a key");

        var (second, _, created) = DevelopmentCertificate.LoadOrCreate(_dataDir, _time);
        using var _second = second;

        Assert.True(created, "an unreadable pair is made again");
        Assert.NotEqual(first.Thumbprint, second.Thumbprint);
        Assert.True(second.HasPrivateKey);
    }
}
