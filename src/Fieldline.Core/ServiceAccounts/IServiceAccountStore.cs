using Fieldline.Core.Devices;

namespace Fieldline.Core.ServiceAccounts;

/// <summary>
/// The durable store of service accounts. Passwords are never stored, only their salted, stretched hashes
/// (see <see cref="ServiceAccountPasswords"/>).
/// </summary>
public interface IServiceAccountStore
{
    /// <summary>
    /// Creates an account: <see cref="RegistryWriteResult.Conflict"/> when the user name exists,
    /// <see cref="RegistryWriteResult.NameTaken"/> when it is a device's id.
    /// </summary>
    Task<RegistryWriteResult> CreateAsync(ServiceAccount account, PasswordHash password, CancellationToken cancellationToken);

    Task<ServiceAccount?> GetAsync(string username, CancellationToken cancellationToken);

    /// <summary>At most <paramref name="limit"/> (1..1000) accounts whose user name sorts after <paramref name="after"/>.</summary>
    Task<ServiceAccountPage> ListAsync(int limit, string? after, CancellationToken cancellationToken);

    /// <summary>Replaces the description, the rules and the update time.</summary>
    Task<RegistryWriteResult> UpdateAsync(ServiceAccount account, CancellationToken cancellationToken);

    Task<RegistryWriteResult> SetPasswordAsync(string username, PasswordHash password, DateTimeOffset at, CancellationToken cancellationToken);

    Task<RegistryWriteResult> DeleteAsync(string username, CancellationToken cancellationToken);

    /// <summary>The account with its password hash, for authentication; null when unknown.</summary>
    Task<ServiceAccountCredentials?> GetCredentialsAsync(string username, CancellationToken cancellationToken);
}
