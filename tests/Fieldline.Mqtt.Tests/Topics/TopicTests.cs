using System.Text;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Tests.Topics;

public class TopicTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("a/b/c", true)]
    [InlineData("#", true)]
    [InlineData("+", true)]
    [InlineData("a/#", true)]
    [InlineData("+/+/#", true)]
    [InlineData("/", true)]
    [InlineData("a//b", true)]
    [InlineData("$SYS/#", true)]
    [InlineData("", false)]
    [InlineData("a#", false)]
    [InlineData("a/#/b", false)]
    [InlineData("#/", false)]
    [InlineData("a+", false)]
    [InlineData("+a/b", false)]
    [InlineData("a/b+", false)]
    public void Filter_validity_follows_the_wildcard_rules(string filter, bool valid)
    {
        Assert.Equal(valid, TopicFilter.IsValid(Encoding.UTF8.GetBytes(filter)));
    }

    [Fact]
    public void A_filter_with_a_NUL_or_invalid_utf8_is_invalid()
    {
        Assert.False(TopicFilter.IsValid([(byte)'a', 0]));
        Assert.False(TopicFilter.IsValid([0xC3, 0x28]));
    }

    [Theory]
    [InlineData("a/b", true)]
    [InlineData("a/+", false)]
    [InlineData("a/#", false)]
    [InlineData("", false)]
    public void Topic_names_have_no_wildcards(string topic, bool valid)
    {
        Assert.Equal(valid, TopicFilter.IsValidTopicName(Encoding.UTF8.GetBytes(topic)));
    }

    public static TheoryData<string, string, bool> MatchCases => new()
    {
        { "a/b", "a/b", true },
        { "a/b", "a/c", false },
        { "a/b", "a/b/c", false },
        { "a/b/c", "a/b", false },
        { "a/+", "a/b", true },
        { "a/+", "a/b/c", false },
        { "a/+", "a", false },
        { "a/+/c", "a/x/c", true },
        { "+/+", "a/b", true },
        { "+", "a", true },
        { "+", "a/b", false },
        { "#", "a", true },
        { "#", "a/b/c", true },
        { "a/#", "a", true },
        { "a/#", "a/b/c", true },
        { "a/#", "ab", false },
        { "a/+/#", "a/b", true },
        { "+/#", "a", true },
        { "#", "$SYS/x", false },
        { "+/x", "$SYS/x", false },
        { "+", "$SYS", false },
        { "$SYS/#", "$SYS/x", true },
        { "$SYS/+", "$SYS/x", true },
        { "a/$x", "a/$x", true },
        { "+/$x", "a/$x", true },
        { "/", "/", true },
        { "+/+", "/", true },
        { "+", "/", false },
        { "/+", "/a", true },
        { "a//b", "a//b", true },
        { "a/+/b", "a//b", true },
        { "a/b", "a//b", false },
        { "#", "/", true },
    };

    [Theory]
    [MemberData(nameof(MatchCases))]
    public void TopicFilter_Matches_follows_the_matching_rules(string filter, string topic, bool matches)
    {
        Assert.Equal(matches, TopicFilter.Matches(Encoding.UTF8.GetBytes(filter), Encoding.UTF8.GetBytes(topic)));
    }

    [Theory]
    [MemberData(nameof(MatchCases))]
    public void TopicTree_agrees_with_TopicFilter_Matches(string filter, string topic, bool matches)
    {
        using var tree = new TopicTree<Subscriber>();
        var subscriber = new Subscriber("s");
        tree.Add(filter, subscriber, Subscription(subscriber, filter));
        Assert.Equal(matches ? ["s"] : [], Match(tree, topic));
    }

    [Fact]
    public void Overlapping_subscriptions_all_match_once_each()
    {
        using var tree = new TopicTree<Subscriber>();
        var a = new Subscriber("a");
        var b = new Subscriber("b");
        foreach (var filter in new[] { "x/y", "x/+", "x/#", "#" })
        {
            tree.Add(filter, a, Subscription(a, filter));
        }

        tree.Add("x/y", b, Subscription(b, "x/y"));

        var matches = new List<TopicSubscription<Subscriber>>();
        tree.Match("x/y"u8, matches);
        Assert.Equal(["#:a", "x/#:a", "x/+:a", "x/y:a", "x/y:b"], matches.Select(m => $"{m.Filter}:{m.Subscriber.Name}").Order(StringComparer.Ordinal));
        Assert.Equal(5, tree.Count);
    }

    [Fact]
    public void Adding_the_same_subscription_twice_replaces_it()
    {
        using var tree = new TopicTree<Subscriber>();
        var a = new Subscriber("a");
        Assert.True(tree.Add("x", a, Subscription(a, "x", qos: 0)));
        Assert.False(tree.Add("x", a, Subscription(a, "x", qos: 1)));
        Assert.Equal(1, tree.Count);

        var matches = new List<TopicSubscription<Subscriber>>();
        tree.Match("x"u8, matches);
        Assert.Equal(1, Assert.Single(matches).MaximumQoS);
    }

    [Fact]
    public void Remove_stops_matching_and_prunes_empty_nodes()
    {
        using var tree = new TopicTree<Subscriber>();
        var a = new Subscriber("a");
        var b = new Subscriber("b");
        tree.Add("a/b/c", a, Subscription(a, "a/b/c"));
        tree.Add("a/+/#", a, Subscription(a, "a/+/#"));
        tree.Add("a/b", b, Subscription(b, "a/b"));

        Assert.False(tree.Remove("a/b/c", b));
        Assert.False(tree.Remove("a/x", a));
        Assert.True(tree.Remove("a/b/c", a));
        Assert.False(tree.Remove("a/b/c", a));
        Assert.Equal(["a"], Match(tree, "a/b/c"));
        Assert.True(tree.Remove("a/+/#", a));
        Assert.Equal([], Match(tree, "a/b/c"));
        Assert.Equal(["b"], Match(tree, "a/b"));
        Assert.True(tree.Remove("a/b", b));
        Assert.Equal(0, tree.Count);
        Assert.Equal(0, NodeCount(tree));

        // The tree still works after being pruned to nothing.
        tree.Add("a/b", b, Subscription(b, "a/b"));
        Assert.Equal(["b"], Match(tree, "a/b"));
    }

    [Fact]
    public void Removing_a_leaf_keeps_the_parents_other_subscriptions()
    {
        using var tree = new TopicTree<Subscriber>();
        var a = new Subscriber("a");
        tree.Add("a", a, Subscription(a, "a"));
        tree.Add("a/b", a, Subscription(a, "a/b"));
        tree.Add("a/#", a, Subscription(a, "a/#"));
        Assert.True(tree.Remove("a/b", a));
        Assert.Equal(["a", "a/#"], MatchFilters(tree, "a"));
        Assert.Equal(["a/#"], MatchFilters(tree, "a/b"));
    }

    private static List<string> Match(TopicTree<Subscriber> tree, string topic)
    {
        var matches = new List<TopicSubscription<Subscriber>>();
        tree.Match(Encoding.UTF8.GetBytes(topic), matches);
        return [.. matches.Select(m => m.Subscriber.Name).Order(StringComparer.Ordinal)];
    }

    private static List<string> MatchFilters(TopicTree<Subscriber> tree, string topic)
    {
        var matches = new List<TopicSubscription<Subscriber>>();
        tree.Match(Encoding.UTF8.GetBytes(topic), matches);
        return [.. matches.Select(m => m.Filter).Order(StringComparer.Ordinal)];
    }

    private static int NodeCount(TopicTree<Subscriber> tree)
    {
        // The root's children, through reflection: pruning is internal, and this is the only way to see it.
        var root = typeof(TopicTree<Subscriber>).GetField("_root", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(tree)!;
        var type = root.GetType();
        var children = (System.Collections.ICollection?)type.GetProperty("Children")!.GetValue(root);
        var single = type.GetProperty("SingleLevel")!.GetValue(root);
        var multi = type.GetProperty("MultiLevel")!.GetValue(root);
        return (children?.Count ?? 0) + (single is null ? 0 : 1) + (multi is null ? 0 : 1);
    }

    private static TopicSubscription<Subscriber> Subscription(Subscriber subscriber, string filter, byte qos = 1) =>
        new(subscriber, filter, qos, false, false, 0);

    internal sealed record Subscriber(string Name);
}
