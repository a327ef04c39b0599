using System.Text;
using Fieldline.Core.ServiceAccounts;

namespace Fieldline.Core.Tests.ServiceAccounts;

public sealed class ServiceAccountIdentityTests
{
    private static readonly ServiceAccount Account = new()
    {
        Username = "grafana",
        Rules =
        [
            new TopicRule(TopicAction.Publish, "integrations/{username}/out/#"),
            new TopicRule(TopicAction.Subscribe, "sensor/+/telemetry"),
            new TopicRule(TopicAction.All, "clients/{clientid}/#"),
        ],
    };

    [Theory]
    [InlineData("integrations/grafana/out/x", true)]
    [InlineData("integrations/other/out/x", false)]
    [InlineData("clients/c-1/anything/deep", true)]
    [InlineData("clients/c-2/anything", false)]
    [InlineData("sensor/dev-1/telemetry", false)]
    public void Publishing_follows_the_publish_and_all_rules_with_placeholders_filled_in(string topic, bool allowed) =>
        Assert.Equal(allowed, ServiceAccountIdentity.Compile(Account, "c-1").MayPublish(Utf8(topic)));

    [Theory]
    [InlineData("sensor/+/telemetry", true)]
    [InlineData("sensor/dev-1/telemetry", true)]
    [InlineData("sensor/#", false)]
    [InlineData("clients/c-1/#", true)]
    [InlineData("clients/+/#", false)]
    [InlineData("integrations/grafana/out/#", false)]
    public void Subscribing_needs_a_subscribe_or_all_rule_covering_the_whole_filter(string filter, bool allowed) =>
        Assert.Equal(allowed, ServiceAccountIdentity.Compile(Account, "c-1").MaySubscribe(Utf8(filter)));

    [Theory]
    [InlineData("+")]
    [InlineData("#")]
    [InlineData("a/b")]
    [InlineData("$x")]
    public void A_client_id_that_would_change_a_patterns_shape_gets_nothing_from_that_rule(string clientId)
    {
        var identity = ServiceAccountIdentity.Compile(Account, clientId);

        Assert.False(identity.MayPublish(Utf8("clients/other/x")));
        Assert.False(identity.MaySubscribe(Utf8("clients/+/#")));
        Assert.False(identity.MaySubscribe(Utf8("clients/#")));
        Assert.True(identity.MayPublish(Utf8("integrations/grafana/out/x")), "the rules without {clientid} still apply");
    }

    [Fact]
    public void No_rule_lets_a_service_account_publish_to_a_dollar_topic()
    {
        var everything = new ServiceAccount { Username = "ops", Rules = [new TopicRule(TopicAction.All, "#"), new TopicRule(TopicAction.All, "$SYS/#")] };
        var identity = ServiceAccountIdentity.Compile(everything, "c");

        Assert.True(identity.MayPublish(Utf8("a/b")));
        Assert.False(identity.MayPublish(Utf8("$SYS/x")));
        Assert.True(identity.MaySubscribe(Utf8("$SYS/#")));
        Assert.False(identity.MaySubscribe(Utf8("$other/#")));
    }

    [Fact]
    public void Authorizing_a_publish_allocates_nothing()
    {
        var identity = ServiceAccountIdentity.Compile(Account, "c-1");
        var allowed = Utf8("clients/c-1/state");
        var refused = Utf8("elsewhere/x/y");
        identity.MayPublish(allowed);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var count = 0;
        for (var i = 0; i < 10_000; i++)
        {
            count += identity.MayPublish(allowed) ? 1 : 0;
            count += identity.MayPublish(refused) ? 1 : 0;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(10_000, count);
    }

    [Theory]
    [InlineData("a/{username}/#", null)]
    [InlineData("{clientid}", null)]
    [InlineData("x-{username}-{clientid}/y", null)]
    [InlineData("a/{user}/#", "unknown placeholder {user}")]
    [InlineData("a/#/b", "not a valid MQTT topic filter")]
    [InlineData("a/{username}+", "not a valid MQTT topic filter")]
    [InlineData("", "1 to 1024 characters")]
    public void Rule_patterns_are_checked_when_saved(string pattern, string? problem)
    {
        var result = TopicRules.Check(pattern);
        if (problem is null)
        {
            Assert.Null(result);
        }
        else
        {
            Assert.Contains(problem, result, StringComparison.Ordinal);
        }
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
