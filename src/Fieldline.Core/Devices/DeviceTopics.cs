namespace Fieldline.Core.Devices;

/// <summary>
/// The topic rules for devices: a device publishes and subscribes only under <c>sensor/{id}/</c> and
/// <c>device/{id}/</c>. Wildcards are allowed in a device's filters only below its own prefix, so that a filter
/// such as <c>sensor/+/telemetry</c> cannot reach other devices.
/// </summary>
public static class DeviceTopics
{
    /// <summary>Whether the device may publish to the topic.</summary>
    public static bool MayPublish(DeviceIdentity device, ReadOnlySpan<byte> topic)
    {
        ArgumentNullException.ThrowIfNull(device);
        return IsBelow(topic, device.SensorPrefix) || IsBelow(topic, device.DevicePrefix);
    }

    /// <summary>Whether the device may subscribe to the filter.</summary>
    public static bool MaySubscribe(DeviceIdentity device, ReadOnlySpan<byte> filter)
    {
        ArgumentNullException.ThrowIfNull(device);

        // The prefix contains no wildcard (device ids cannot), so anything matching the filter lies below it.
        return IsBelow(filter, device.SensorPrefix) || IsBelow(filter, device.DevicePrefix);
    }

    private static bool IsBelow(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> prefix) =>
        topic.Length > prefix.Length && topic.StartsWith(prefix);
}
