using System.Text.Unicode;

namespace Fieldline.Core.ServiceAccounts;

/// <summary>
/// MQTT topic filter logic for access rules (OASIS MQTT 5.0, 4.7), on UTF-8 spans without allocation: whether a
/// filter matches a topic name, and whether it covers another filter, that is, matches every topic that filter can.
/// </summary>
public static class TopicPatterns
{
    /// <summary>Whether a filter is well formed: not empty, no U+0000, '#' only as the whole last level, '+' only as a whole level.</summary>
    public static bool IsValidFilter(ReadOnlySpan<byte> filter)
    {
        if (filter.IsEmpty || filter.Contains((byte)0) || !Utf8.IsValid(filter))
        {
            return false;
        }

        for (var i = 0; i < filter.Length; i++)
        {
            var c = filter[i];
            var levelStart = i == 0 || filter[i - 1] == '/';
            if (c == '#' && (!levelStart || i != filter.Length - 1))
            {
                return false;
            }

            if (c == '+' && (!levelStart || (i != filter.Length - 1 && filter[i + 1] != '/')))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Whether <paramref name="pattern"/> matches the topic name <paramref name="topic"/>. A topic name has no
    /// wildcards, so this is <see cref="Covers"/> of a filter without any.
    /// </summary>
    public static bool Matches(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> topic) => Covers(pattern, topic);

    /// <summary>
    /// Whether every topic that <paramref name="filter"/> matches is also matched by <paramref name="pattern"/>.
    /// Level by level: '#' in the pattern covers whatever is left; '+' in the pattern covers one level of anything
    /// but '#'; a literal level covers only itself. A filter level '#' is covered only by a pattern level '#' (it also
    /// matches deeper topics and its parent), except that a whole filter '#' is also covered by "+/#"; a filter level
    /// '+' only by '+' or '#'. Filters starting with a
    /// wildcard never match '$' topics (MQTT-4.7.2-1), so such a pattern covers no filter that starts with '$'.
    /// </summary>
    public static bool Covers(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> filter)
    {
        if (pattern.IsEmpty || filter.IsEmpty)
        {
            return false;
        }

        if (filter[0] == '$' && pattern[0] is (byte)'+' or (byte)'#')
        {
            return false;
        }

        for (var first = true; ; first = false)
        {
            var patternSlash = pattern.IndexOf((byte)'/');
            var patternLevel = patternSlash < 0 ? pattern : pattern[..patternSlash];
            if (IsMultiLevel(patternLevel))
            {
                return true;
            }

            var filterSlash = filter.IndexOf((byte)'/');
            var filterLevel = filterSlash < 0 ? filter : filter[..filterSlash];
            if (IsMultiLevel(filterLevel))
            {
                // '#' below the top also matches the parent, which only '#' does too. A whole filter '#' matches every
                // topic (one level or more), and so does "+/#" ('#' matching the parent of the '+' level).
                return first && IsSingleLevel(patternLevel) && patternSlash >= 0 && pattern[(patternSlash + 1)..].SequenceEqual("#"u8);
            }

            var levelCovered = IsSingleLevel(patternLevel) || (!IsSingleLevel(filterLevel) && patternLevel.SequenceEqual(filterLevel));
            if (!levelCovered)
            {
                return false;
            }

            if (filterSlash < 0)
            {
                // The filter ends here: the pattern must end too, or go on only with "/#", which also matches its parent.
                return patternSlash < 0 || pattern[(patternSlash + 1)..].SequenceEqual("#"u8);
            }

            if (patternSlash < 0)
            {
                return false;
            }

            pattern = pattern[(patternSlash + 1)..];
            filter = filter[(filterSlash + 1)..];
        }
    }

    /// <summary>
    /// Whether some topic name is matched by both filters. Level by level: '#' in either matches whatever is left
    /// (including nothing: "a/#" matches "a"); '+' matches any one level; literal levels must be equal; both must
    /// end together. A filter starting with a wildcard matches no '$' topic, so it overlaps no filter that starts
    /// with a literal '$' level.
    /// </summary>
    public static bool Overlap(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        if (first.IsEmpty || second.IsEmpty)
        {
            return false;
        }

        if ((first[0] == '$' && second[0] is (byte)'+' or (byte)'#') || (second[0] == '$' && first[0] is (byte)'+' or (byte)'#'))
        {
            return false;
        }

        while (true)
        {
            var firstSlash = first.IndexOf((byte)'/');
            var secondSlash = second.IndexOf((byte)'/');
            var firstLevel = firstSlash < 0 ? first : first[..firstSlash];
            var secondLevel = secondSlash < 0 ? second : second[..secondSlash];
            if (IsMultiLevel(firstLevel) || IsMultiLevel(secondLevel))
            {
                return true;
            }

            if (!IsSingleLevel(firstLevel) && !IsSingleLevel(secondLevel) && !firstLevel.SequenceEqual(secondLevel))
            {
                return false;
            }

            if (firstSlash < 0 || secondSlash < 0)
            {
                // One ends here: the other must end too, or go on only with "/#" (which also matches its parent).
                var rest = firstSlash < 0 ? (secondSlash < 0 ? [] : second[(secondSlash + 1)..]) : first[(firstSlash + 1)..];
                return (firstSlash < 0 && secondSlash < 0) || rest.SequenceEqual("#"u8);
            }

            first = first[(firstSlash + 1)..];
            second = second[(secondSlash + 1)..];
        }
    }

    private static bool IsMultiLevel(ReadOnlySpan<byte> level) => level.Length == 1 && level[0] == '#';

    private static bool IsSingleLevel(ReadOnlySpan<byte> level) => level.Length == 1 && level[0] == '+';
}
