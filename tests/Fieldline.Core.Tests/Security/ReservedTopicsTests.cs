using System.Text;
using Fieldline.Core.Security;

namespace Fieldline.Core.Tests.Security;

public sealed class ReservedTopicsTests
{
    [Theory]
    [InlineData("sensor/dev-1/telemetry", true)]
    [InlineData("device/dev-1/command", true)]
    [InlineData("sensor", true)]
    [InlineData("$SYS/uptime", true)]
    [InlineData("sensors/x", false)]
    [InlineData("plain/topic", false)]
    [InlineData("/sensor/x", false)]
    [InlineData("TopicA/B", false)]
    public void The_device_namespaces_and_dollar_topics_are_reserved(string topic, bool reserved) =>
        Assert.Equal(reserved, ReservedTopics.IsReserved(Encoding.UTF8.GetBytes(topic)));

    [Theory]
    [InlineData("#", true)]
    [InlineData("+/+", true)]
    [InlineData("sensor/#", true)]
    [InlineData("$SYS/#", true)]
    [InlineData("TopicA/#", false)]
    [InlineData("/+", false)]
    public void A_filter_may_match_reserved_topics_when_its_first_level_is_reserved_or_a_wildcard(string filter, bool mayMatch) =>
        Assert.Equal(mayMatch, ReservedTopics.MayMatchReserved(Encoding.UTF8.GetBytes(filter)));
}
