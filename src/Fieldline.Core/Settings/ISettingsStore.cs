namespace Fieldline.Core.Settings;

/// <summary>
/// Small durable values the platform owns (for example the admin key hash), kept next to the registry
/// so that one data directory holds the whole state of an installation.
/// </summary>
public interface ISettingsStore
{
    /// <summary>The stored value, or null when the key was never set.</summary>
    Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken);

    /// <summary>Stores or replaces a value.</summary>
    Task SetAsync(string key, byte[] value, CancellationToken cancellationToken);
}
