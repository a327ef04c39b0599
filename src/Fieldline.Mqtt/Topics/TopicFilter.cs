using System.Text.Unicode;

namespace Fieldline.Mqtt.Topics;

/// <summary>Validation and one-off matching of topic filters (OASIS MQTT 5.0, 4.7).</summary>
public static class TopicFilter
{
    /// <summary>Whether a topic filter is well formed: '#' only as the whole last level, '+' only as a whole level.</summary>
    public static bool IsValid(ReadOnlySpan<byte> filter)
    {
        if (filter.IsEmpty || filter.Contains((byte)0) || !Utf8.IsValid(filter))
        {
            return false;
        }

        for (var i = 0; i < filter.Length; i++)
        {
            var c = filter[i];
            if (c == '#')
            {
                var levelStart = i == 0 || filter[i - 1] == '/';
                if (!levelStart || i != filter.Length - 1)
                {
                    return false;
                }
            }
            else if (c == '+')
            {
                var levelStart = i == 0 || filter[i - 1] == '/';
                var levelEnd = i == filter.Length - 1 || filter[i + 1] == '/';
                if (!levelStart || !levelEnd)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Whether a topic name is well formed: not empty, no wildcards, valid UTF-8 without U+0000.</summary>
    public static bool IsValidTopicName(ReadOnlySpan<byte> topic) =>
        !topic.IsEmpty && topic.IndexOfAny((byte)'+', (byte)'#', (byte)0) < 0 && Utf8.IsValid(topic);

    /// <summary>
    /// Whether <paramref name="topic"/> matches <paramref name="filter"/>, including the rule that a filter
    /// starting with a wildcard does not match a topic starting with '$' (MQTT-4.7.2-1).
    /// </summary>
    public static bool Matches(ReadOnlySpan<byte> filter, ReadOnlySpan<byte> topic)
    {
        if (!topic.IsEmpty && topic[0] == '$' && !filter.IsEmpty && (filter[0] == '+' || filter[0] == '#'))
        {
            return false;
        }

        while (true)
        {
            var filterSlash = filter.IndexOf((byte)'/');
            var filterLevel = filterSlash < 0 ? filter : filter[..filterSlash];
            if (filterLevel.Length == 1 && filterLevel[0] == '#')
            {
                return true;
            }

            var topicSlash = topic.IndexOf((byte)'/');
            var topicLevel = topicSlash < 0 ? topic : topic[..topicSlash];
            var levelMatches = (filterLevel.Length == 1 && filterLevel[0] == '+') || filterLevel.SequenceEqual(topicLevel);
            if (!levelMatches)
            {
                return false;
            }

            if (filterSlash < 0 || topicSlash < 0)
            {
                if (filterSlash < 0 && topicSlash < 0)
                {
                    return true;
                }

                // "a/#" matches "a": the multi-level wildcard also matches the parent level.
                return topicSlash < 0 && filter[(filterSlash + 1)..].SequenceEqual("#"u8);
            }

            filter = filter[(filterSlash + 1)..];
            topic = topic[(topicSlash + 1)..];
        }
    }
}
