using System.Text;
using System.Text.RegularExpressions;

namespace Fieldline.Core.ServiceAccounts;

/// <summary>
/// Validation and placeholder substitution of topic rules. A pattern is an MQTT topic filter in which
/// <c>{username}</c> and <c>{clientid}</c> stand for the connecting client's user name and client id.
/// </summary>
public static partial class TopicRules
{
    public const string UsernamePlaceholder = "{username}";
    public const string ClientIdPlaceholder = "{clientid}";

    /// <summary>Most rules an account may have.</summary>
    public const int MaximumRules = 100;

    /// <summary>Longest pattern, in characters.</summary>
    public const int MaximumPatternLength = 1024;

    [GeneratedRegex(@"\{([^{}/]*)\}")]
    private static partial Regex PlaceholderPattern { get; }

    /// <summary>Why <paramref name="pattern"/> is not a usable rule pattern, or null when it is.</summary>
    public static string? Check(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.Length is 0 or > MaximumPatternLength)
        {
            return $"must be 1 to {MaximumPatternLength} characters";
        }

        // Braces are legal in topics, but a misspelt placeholder would silently become a literal level.
        foreach (Match match in PlaceholderPattern.Matches(pattern))
        {
            if (match.Value is not (UsernamePlaceholder or ClientIdPlaceholder))
            {
                return $"has the unknown placeholder {match.Value}; the placeholders are {UsernamePlaceholder} and {ClientIdPlaceholder}";
            }
        }

        var sample = pattern.Replace(UsernamePlaceholder, "u", StringComparison.Ordinal).Replace(ClientIdPlaceholder, "c", StringComparison.Ordinal);
        return TopicPatterns.IsValidFilter(Encoding.UTF8.GetBytes(sample))
            ? null
            : "is not a valid MQTT topic filter: '+' and '#' must fill a whole level, '#' only the last one";
    }

    /// <summary>
    /// The pattern with its placeholders filled in, as UTF-8; null when a value it needs could change the pattern's
    /// shape (it contains '/', '+', '#' or U+0000, or starts with '$'): a client id of "+" must not turn
    /// <c>clients/{clientid}/#</c> into a rule for every client, so such a rule allows nothing for that client.
    /// </summary>
    public static byte[]? Substitute(string pattern, string username, string clientId)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(username);
        ArgumentNullException.ThrowIfNull(clientId);
        var text = pattern;
        if (text.Contains(UsernamePlaceholder, StringComparison.Ordinal))
        {
            if (!IsSafeValue(username))
            {
                return null;
            }

            text = text.Replace(UsernamePlaceholder, username, StringComparison.Ordinal);
        }

        if (pattern.Contains(ClientIdPlaceholder, StringComparison.Ordinal))
        {
            if (!IsSafeValue(clientId))
            {
                return null;
            }

            text = text.Replace(ClientIdPlaceholder, clientId, StringComparison.Ordinal);
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        return TopicPatterns.IsValidFilter(bytes) ? bytes : null;
    }

    private static bool IsSafeValue(string value) =>
        value.Length > 0 && value[0] != '$' && value.AsSpan().IndexOfAny("/+#\0") < 0;
}
