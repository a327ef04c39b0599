namespace Fieldline.Core.ServiceAccounts;

/// <summary>Why the live connections of a service account are closed.</summary>
public enum ServiceAccountChange
{
    /// <summary>Its rules changed: it may reconnect and gets the new rules.</summary>
    RulesChanged,

    /// <summary>It was deleted or its password replaced: the old credentials no longer work.</summary>
    CredentialsRevoked,
}

/// <summary>Closes the live connections of a service account, so that a change takes effect at once.</summary>
public interface IServiceAccountConnections
{
    /// <summary>Closes every connection authenticated as <paramref name="username"/>; returns how many.</summary>
    int Disconnect(string username, ServiceAccountChange change);
}
