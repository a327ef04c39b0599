using System.Text;
using Fieldline.Core.Devices;

namespace Fieldline.Core.Tests.Devices;

public sealed class DeviceTopicsTests
{
    private static readonly DeviceIdentity Device = new("dev-1");

    [Theory]
    [InlineData("sensor/dev-1/telemetry", true)]
    [InlineData("device/dev-1/status", true)]
    [InlineData("device/dev-1/shadow/update", true)]
    [InlineData("sensor/dev-2/telemetry", false)]
    [InlineData("sensor/dev-1", false)]
    [InlineData("sensor/dev-1/", false)]
    [InlineData("sensor/dev-10/telemetry", false)]
    [InlineData("sensor/dev-/telemetry", false)]
    [InlineData("$SYS/broker/uptime", false)]
    [InlineData("other/dev-1/x", false)]
    public void A_device_publishes_only_below_its_own_prefixes(string topic, bool allowed) =>
        Assert.Equal(allowed, DeviceTopics.MayPublish(Device, Encoding.UTF8.GetBytes(topic)));

    [Theory]
    [InlineData("device/dev-1/command", true)]
    [InlineData("device/dev-1/#", true)]
    [InlineData("device/dev-1/+/delta", true)]
    [InlineData("device/+/command", false)]
    [InlineData("sensor/#", false)]
    [InlineData("#", false)]
    [InlineData("+/dev-1/command", false)]
    [InlineData("device/dev-1", false)]
    public void A_device_subscribes_only_below_its_own_prefixes(string filter, bool allowed) =>
        Assert.Equal(allowed, DeviceTopics.MaySubscribe(Device, Encoding.UTF8.GetBytes(filter)));
}
