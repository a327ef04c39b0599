namespace Fieldline.Mqtt.Topics;

/// <summary>Shared subscription filters, <c>$share/{ShareName}/{filter}</c> (OASIS MQTT 5.0, 4.8.2).</summary>
public static class SharedSubscriptionFilter
{
    private const string Prefix = "$share/";

    /// <summary>Whether the filter asks for a shared subscription (whether or not it is well formed).</summary>
    public static bool IsShared(string filter) => filter.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>
    /// Splits a shared subscription filter into its share name and topic filter; false when it is malformed: an
    /// empty share name or one with '+', '#' or '/' (MQTT-4.8.2-1, -2), or a missing or invalid topic filter.
    /// </summary>
    public static bool TryParse(string filter, out string shareName, out string topicFilter)
    {
        shareName = topicFilter = "";
        if (!IsShared(filter))
        {
            return false;
        }

        var slash = filter.IndexOf('/', Prefix.Length);
        if (slash <= Prefix.Length)
        {
            return false;
        }

        shareName = filter[Prefix.Length..slash];
        topicFilter = filter[(slash + 1)..];
        return shareName.AsSpan().IndexOfAny('+', '#') < 0
            && TopicFilter.IsValid(System.Text.Encoding.UTF8.GetBytes(topicFilter));
    }
}
