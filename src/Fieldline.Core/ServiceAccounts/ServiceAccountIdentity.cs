namespace Fieldline.Core.ServiceAccounts;

/// <summary>
/// An authenticated service account on one connection, with its rules compiled once at connect: placeholders
/// filled in for this client and turned into UTF-8, split by action. Authorizing a PUBLISH is then a walk over
/// byte arrays that allocates nothing.
/// </summary>
public sealed class ServiceAccountIdentity
{
    private readonly byte[][] _publish;
    private readonly byte[][] _subscribe;

    private ServiceAccountIdentity(string username, string clientId, byte[][] publish, byte[][] subscribe)
    {
        Username = username;
        ClientId = clientId;
        _publish = publish;
        _subscribe = subscribe;
    }

    /// <summary>The account's user name.</summary>
    public string Username { get; }

    /// <summary>The client id the rules were compiled for.</summary>
    public string ClientId { get; }

    /// <summary>Compiles the account's rules for a client; a rule whose placeholders cannot be filled safely is left out.</summary>
    public static ServiceAccountIdentity Compile(ServiceAccount account, string clientId)
    {
        ArgumentNullException.ThrowIfNull(account);
        ArgumentNullException.ThrowIfNull(clientId);
        var publish = new List<byte[]>();
        var subscribe = new List<byte[]>();
        foreach (var rule in account.Rules)
        {
            if (TopicRules.Substitute(rule.Pattern, account.Username, clientId) is not { } pattern)
            {
                continue;
            }

            if (rule.Action is TopicAction.Publish or TopicAction.All)
            {
                publish.Add(pattern);
            }

            if (rule.Action is TopicAction.Subscribe or TopicAction.All)
            {
                subscribe.Add(pattern);
            }
        }

        return new ServiceAccountIdentity(account.Username, clientId, [.. publish], [.. subscribe]);
    }

    /// <summary>
    /// Whether a publish rule matches the topic. '$' topics are the server's (MQTT 4.7.2) and never published by
    /// clients, whatever a rule says. Called for every PUBLISH: allocates nothing.
    /// </summary>
    public bool MayPublish(ReadOnlySpan<byte> topic)
    {
        if (topic.IsEmpty || topic[0] == '$')
        {
            return false;
        }

        foreach (var pattern in _publish)
        {
            if (TopicPatterns.Matches(pattern, topic))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether a subscribe rule covers the whole filter (every topic the filter can match).</summary>
    public bool MaySubscribe(ReadOnlySpan<byte> filter)
    {
        foreach (var pattern in _subscribe)
        {
            if (TopicPatterns.Covers(pattern, filter))
            {
                return true;
            }
        }

        return false;
    }
}
