namespace Fieldline.Core.ServiceAccounts;

/// <summary>What a topic rule allows.</summary>
public enum TopicAction
{
    Publish,
    Subscribe,
    All,
}

/// <summary>
/// One access rule of a service account: <see cref="Pattern"/> is an MQTT topic filter ('+' and '#' wildcards)
/// that may contain the placeholders <c>{username}</c> and <c>{clientid}</c>, filled in when the client connects.
/// </summary>
public sealed record TopicRule(TopicAction Action, string Pattern);

/// <summary>
/// An MQTT client that is not a device: an integration or an operator tool. It logs in with a user name and a
/// password and may do what its <see cref="Rules"/> allow, nothing else. User names share one namespace with
/// device ids (both are MQTT user names), so no user name is also a device id.
/// </summary>
public sealed record ServiceAccount
{
    public required string Username { get; init; }
    public string? Description { get; init; }
    public IReadOnlyList<TopicRule> Rules { get; init; } = [];
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>One page of service accounts, ordered by user name; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record ServiceAccountPage(IReadOnlyList<ServiceAccount> Items, string? NextCursor);

/// <summary>What authentication needs: the account and its stored password hash.</summary>
public sealed record ServiceAccountCredentials(ServiceAccount Account, PasswordHash Password);
