namespace Fieldline.Core.Security;

/// <summary>
/// The topics the platform keeps for itself: the device namespaces <c>sensor/...</c> and <c>device/...</c>
/// (telemetry and commands of devices) and every '$' topic (the server's, MQTT 4.7.2). Anonymous clients, when
/// allowed at all, stay outside them.
/// </summary>
public static class ReservedTopics
{
    /// <summary>Whether the topic name lies in a reserved namespace. Called for every message: allocates nothing.</summary>
    public static bool IsReserved(ReadOnlySpan<byte> topic)
    {
        if (topic.IsEmpty)
        {
            return false;
        }

        if (topic[0] == '$')
        {
            return true;
        }

        var slash = topic.IndexOf((byte)'/');
        var first = slash < 0 ? topic : topic[..slash];
        return first.SequenceEqual("sensor"u8) || first.SequenceEqual("device"u8);
    }

    /// <summary>
    /// Whether a topic filter may match a reserved topic. A filter whose first level is a wildcard can match
    /// <c>sensor/...</c>, but never a '$' topic (MQTT-4.7.2-1); one with a literal first level is reserved exactly
    /// when that level is.
    /// </summary>
    public static bool MayMatchReserved(ReadOnlySpan<byte> filter)
    {
        if (filter.IsEmpty)
        {
            return false;
        }

        return filter[0] is (byte)'+' or (byte)'#' || IsReserved(filter);
    }
}
