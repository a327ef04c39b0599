using Fieldline.Core.Security;
using Microsoft.Extensions.Logging;

namespace Fieldline.Core.ServiceAccounts;

/// <summary>The outcome of a service account's authentication.</summary>
public enum ServiceAccountAuthenticationStatus
{
    /// <summary>The password is right; <see cref="ServiceAccountAuthentication.Identity"/> holds the compiled rules.</summary>
    Success,

    /// <summary>No service account has that user name (it may be a device's id).</summary>
    UnknownAccount,

    /// <summary>The password is wrong.</summary>
    BadPassword,

    /// <summary>Too many failures for this account or source address; try later.</summary>
    Throttled,
}

/// <summary>The outcome of a service account's authentication, with the identity to attach to the connection on success.</summary>
public sealed record ServiceAccountAuthentication(ServiceAccountAuthenticationStatus Status, ServiceAccountIdentity? Identity = null);

/// <summary>
/// Authenticates service accounts by user name and password for any protocol: looks the account up, checks the
/// throttle, then the password's PBKDF2 hash in constant time. Failed attempts are limited per account and per
/// source address, and checked before the (deliberately slow) hash is computed, so that guessing costs the
/// attacker time and the server no CPU. At most <c>maxConcurrentVerifications</c> hashes are computed at once, so
/// that a burst of logins cannot take every core from the broker.
/// </summary>
public sealed partial class ServiceAccountAuthenticator : IDisposable
{
    private readonly IServiceAccountStore _store;
    private readonly FailedAttemptLimiter _perAccount;
    private readonly FailedAttemptLimiter _perSource;
    private readonly SemaphoreSlim _verifications;
    private readonly ILogger<ServiceAccountAuthenticator> _logger;

    /// <summary>Creates the authenticator.</summary>
    public ServiceAccountAuthenticator(
        IServiceAccountStore store,
        TimeProvider timeProvider,
        ILogger<ServiceAccountAuthenticator> logger,
        int maxFailuresPerAccount = 10,
        int maxFailuresPerSource = 30,
        TimeSpan? window = null,
        int? maxConcurrentVerifications = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _logger = logger;
        var span = window ?? TimeSpan.FromMinutes(1);
        _perAccount = new FailedAttemptLimiter(maxFailuresPerAccount, span, timeProvider);
        _perSource = new FailedAttemptLimiter(maxFailuresPerSource, span, timeProvider);
        var concurrency = maxConcurrentVerifications ?? Math.Max(1, Environment.ProcessorCount / 2);
        _verifications = new SemaphoreSlim(concurrency, concurrency);
    }

    /// <summary>
    /// Authenticates <paramref name="username"/> with the password given as UTF-8 bytes; on success compiles the
    /// account's rules for <paramref name="clientId"/>.
    /// </summary>
    public async ValueTask<ServiceAccountAuthentication> AuthenticateAsync(string username, string clientId, ReadOnlyMemory<byte> password, string? sourceAddress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(username);
        var credentials = await _store.GetCredentialsAsync(username, cancellationToken).ConfigureAwait(false);
        if (credentials is null)
        {
            return new ServiceAccountAuthentication(ServiceAccountAuthenticationStatus.UnknownAccount);
        }

        var source = sourceAddress ?? "unknown";
        if (_perAccount.IsBlocked(username) || _perSource.IsBlocked(source))
        {
            LogThrottled(_logger, username, source);
            return new ServiceAccountAuthentication(ServiceAccountAuthenticationStatus.Throttled);
        }

        bool valid;
        await _verifications.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            valid = ServiceAccountPasswords.Verify(password.Span, credentials.Password);
        }
        finally
        {
            _verifications.Release();
        }

        if (!valid)
        {
            _perAccount.RecordFailure(username);
            _perSource.RecordFailure(source);
            LogBadPassword(_logger, username, source);
            return new ServiceAccountAuthentication(ServiceAccountAuthenticationStatus.BadPassword);
        }

        _perAccount.Reset(username);
        return new ServiceAccountAuthentication(ServiceAccountAuthenticationStatus.Success, ServiceAccountIdentity.Compile(credentials.Account, clientId));
    }

    public void Dispose() => _verifications.Dispose();

    [LoggerMessage(LogLevel.Information, "Authentication of service account {Username} from {Source} failed: wrong password")]
    private static partial void LogBadPassword(ILogger logger, string username, string source);

    [LoggerMessage(LogLevel.Warning, "Authentication of service account {Username} from {Source} refused: too many failed attempts")]
    private static partial void LogThrottled(ILogger logger, string username, string source);
}
