using System.Text;
using Fieldline.Core.ServiceAccounts;

namespace Fieldline.Core.Tests.ServiceAccounts;

public sealed class TopicPatternsTests
{
    [Theory]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/+", "a/b", true)]
    [InlineData("a/+", "a/b/c", false)]
    [InlineData("a/#", "a", true)]
    [InlineData("a/#", "a/b/c", true)]
    [InlineData("+/+", "a", false)]
    [InlineData("+", "", false)]
    [InlineData("a//b", "a//b", true)]
    [InlineData("a/+/b", "a//b", true)]
    [InlineData("#", "$SYS/uptime", false)]
    [InlineData("+/uptime", "$SYS/uptime", false)]
    [InlineData("$SYS/#", "$SYS/uptime", true)]
    [InlineData("a/b", "a/bc", false)]
    public void A_pattern_matches_topic_names_as_MQTT_filters_do(string pattern, string topic, bool matches) =>
        Assert.Equal(matches, TopicPatterns.Matches(Utf8(pattern), Utf8(topic)));

    [Theory]
    [InlineData("a/#", "a/+/b", true)]
    [InlineData("a/#", "a/#", true)]
    [InlineData("a/#", "a", true)]
    [InlineData("a/#", "a/b/#", true)]
    [InlineData("#", "+/+/#", true)]
    [InlineData("+/+", "a/+", true)]
    [InlineData("a/+", "a/#", false)]
    [InlineData("a/+", "a/+/b", false)]
    [InlineData("a/+/#", "a/b", true)]
    [InlineData("a/b", "a/+", false)]
    [InlineData("a/+", "+/b", false)]
    [InlineData("a/b/c", "a/b", false)]
    [InlineData("a/b", "a/b/c", false)]
    [InlineData("+", "#", false)]
    [InlineData("+/#", "#", true)]
    [InlineData("a/+/#", "a/#", false)]
    [InlineData("+/+/#", "#", false)]
    [InlineData("#", "$SYS/#", false)]
    [InlineData("+/#", "$SYS/x", false)]
    [InlineData("$SYS/#", "$SYS/+/x", true)]
    [InlineData("sensor/+/telemetry", "sensor/+/telemetry", true)]
    [InlineData("sensor/+/telemetry", "sensor/#", false)]
    public void A_pattern_covers_a_filter_when_it_matches_every_topic_the_filter_can(string pattern, string filter, bool covers) =>
        Assert.Equal(covers, TopicPatterns.Covers(Utf8(pattern), Utf8(filter)));

    [Fact]
    public void Coverage_agrees_with_matching_over_every_topic_of_a_small_alphabet()
    {
        // Filters of up to 3 levels over {a, b, +, #, $s}; topics of up to 4 levels over {a, b, z, $s}: deep and varied
        // enough that any filter not covered by a pattern matches a topic the pattern does not.
        var filters = Enumerate(["a", "b", "+", "#", "$s"], 3).Where(f => TopicPatterns.IsValidFilter(Utf8(f))).ToList();
        var topics = Enumerate(["a", "b", "z", "$s"], 4).ToList();
        var matching = filters.ToDictionary(f => f, f => topics.Where(t => ReferenceMatches(f, t)).ToHashSet());
        var disagreements = new List<string>();
        foreach (var pattern in filters)
        {
            foreach (var filter in filters)
            {
                var expected = matching[filter].IsSubsetOf(matching[pattern]);
                if (TopicPatterns.Covers(Utf8(pattern), Utf8(filter)) != expected)
                {
                    disagreements.Add($"{pattern} covers {filter}: expected {expected}");
                }
            }
        }

        Assert.True(disagreements.Count == 0, string.Join("; ", disagreements.Take(20)));
        Assert.True(filters.Count > 60, $"expected more than 60 filters, enumerated {filters.Count}");
    }

    [Theory]
    [InlineData("test/nosubscribe", "#", true)]
    [InlineData("test/nosubscribe", "test/+", true)]
    [InlineData("test/nosubscribe", "+/nosubscribe/#", true)]
    [InlineData("test/nosubscribe", "test/nosubscribe", true)]
    [InlineData("a/#", "a", true)]
    [InlineData("a", "a/#", true)]
    [InlineData("a/+/c", "+/b/+", true)]
    [InlineData("test/nosubscribe", "test/other", false)]
    [InlineData("test/nosubscribe", "test", false)]
    [InlineData("test/nosubscribe", "test/nosubscribe/deeper", false)]
    [InlineData("a/+", "a/b/c", false)]
    [InlineData("$SYS/x", "#", false)]
    [InlineData("$SYS/x", "+/x", false)]
    [InlineData("$SYS/#", "$SYS/x", true)]
    [InlineData("", "#", false)]
    public void Two_filters_overlap_when_some_topic_matches_both(string first, string second, bool overlap)
    {
        Assert.Equal(overlap, TopicPatterns.Overlap(Encoding.UTF8.GetBytes(first), Encoding.UTF8.GetBytes(second)));
        Assert.Equal(overlap, TopicPatterns.Overlap(Encoding.UTF8.GetBytes(second), Encoding.UTF8.GetBytes(first)));
    }

    [Theory]
    [InlineData("a/b", true)]
    [InlineData("#", true)]
    [InlineData("a/+/#", true)]
    [InlineData("+", true)]
    [InlineData("", false)]
    [InlineData("a#", false)]
    [InlineData("a/#/b", false)]
    [InlineData("a+/b", false)]
    [InlineData("a/+b", false)]
    public void Filters_are_valid_only_with_whole_level_wildcards(string filter, bool valid) =>
        Assert.Equal(valid, TopicPatterns.IsValidFilter(Utf8(filter)));

    [Fact]
    public void Matching_allocates_nothing()
    {
        var pattern = Utf8("site/+/sensors/#");
        var topic = Utf8("site/north/sensors/t1/temperature");
        TopicPatterns.Matches(pattern, topic);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var matched = 0;
        for (var i = 0; i < 10_000; i++)
        {
            matched += TopicPatterns.Matches(pattern, topic) ? 1 : 0;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(10_000, matched);
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static IEnumerable<string> Enumerate(string[] levels, int depth)
    {
        IEnumerable<string> current = levels;
        var all = new List<string>(levels);
        for (var d = 2; d <= depth; d++)
        {
            current = current.SelectMany(prefix => levels.Where(l => !l.StartsWith('$')).Select(l => prefix + "/" + l)).ToList();
            all.AddRange(current);
        }

        return all;
    }

    /// <summary>Matching written independently of the code under test, straight from MQTT 4.7, on string levels.</summary>
    private static bool ReferenceMatches(string filter, string topic)
    {
        if (topic.StartsWith('$') && (filter.StartsWith('+') || filter.StartsWith('#')))
        {
            return false;
        }

        return Match(filter.Split('/'), 0, topic.Split('/'), 0);

        static bool Match(string[] f, int i, string[] t, int j)
        {
            if (i == f.Length)
            {
                return j == t.Length;
            }

            if (f[i] == "#")
            {
                return true;
            }

            if (j == t.Length)
            {
                return false;
            }

            return (f[i] == "+" || f[i] == t[j]) && Match(f, i + 1, t, j + 1);
        }
    }
}
