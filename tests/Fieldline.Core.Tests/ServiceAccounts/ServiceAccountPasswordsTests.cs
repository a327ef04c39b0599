using System.Text;
using Fieldline.Core.ServiceAccounts;

namespace Fieldline.Core.Tests.ServiceAccounts;

public sealed class ServiceAccountPasswordsTests
{
    [Fact]
    public void A_hash_verifies_its_password_and_nothing_else()
    {
        var hash = ServiceAccountPasswords.Hash("correct horse battery staple");

        Assert.True(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("correct horse battery staple"), hash));
        Assert.False(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("correct horse battery stapl"), hash));
        Assert.False(ServiceAccountPasswords.Verify([], hash));
        Assert.Equal(ServiceAccountPasswords.Iterations, hash.Iterations);
        Assert.True(hash.Iterations >= 600_000, $"PBKDF2-SHA256 needs at least 600000 iterations (OWASP 2023), has {hash.Iterations}");
    }

    [Fact]
    public void The_same_password_hashes_differently_each_time_with_its_own_salt()
    {
        var first = ServiceAccountPasswords.Hash("the same password here", iterations: 1000);
        var second = ServiceAccountPasswords.Hash("the same password here", iterations: 1000);

        Assert.Equal(16, first.Salt.Length);
        Assert.NotEqual(first.Salt, second.Salt);
        Assert.NotEqual(first.Hash, second.Hash);
        Assert.True(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("the same password here"), second));
    }

    [Fact]
    public void A_hash_made_with_other_iterations_still_verifies()
    {
        var old = ServiceAccountPasswords.Hash("an older password!", iterations: 1000);

        Assert.True(ServiceAccountPasswords.Verify(Encoding.UTF8.GetBytes("an older password!"), old));
    }

    [Fact]
    public void A_presented_password_too_long_to_be_valid_is_refused_without_hashing()
    {
        var hash = ServiceAccountPasswords.Hash("a sufficiently long password", iterations: 1000);

        Assert.False(ServiceAccountPasswords.Verify(new byte[(ServiceAccountPasswords.MaximumLength * 4) + 1], hash));
    }

    [Fact]
    public void Generated_passwords_are_43_url_safe_characters_and_never_repeat()
    {
        var passwords = Enumerable.Range(0, 100).Select(_ => ServiceAccountPasswords.Generate()).ToList();

        Assert.All(passwords, p => Assert.Matches("^[A-Za-z0-9_-]{43}$", p));
        Assert.Equal(100, passwords.Distinct().Count());
        Assert.All(passwords, p => Assert.Null(ServiceAccountPasswords.Check(p)));
    }

    [Theory]
    [InlineData("0123456789abcde", "16 to 256")]
    [InlineData("0123456789abcdef", null)]
    [InlineData("with a tab\t inside it", "control characters")]
    public void Chosen_passwords_are_checked_for_length_and_control_characters(string password, string? problem)
    {
        var result = ServiceAccountPasswords.Check(password);
        if (problem is null)
        {
            Assert.Null(result);
        }
        else
        {
            Assert.Contains(problem, result, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Passwords_longer_than_256_characters_are_refused() =>
        Assert.NotNull(ServiceAccountPasswords.Check(new string('x', 257)));
}
