using System.Text;
using Fieldline.Core.Security;
using Fieldline.Core.ServiceAccounts;

namespace Fieldline.Broker;

/// <summary>
/// What anonymous clients (with <c>Mqtt:AllowAnonymous</c>) may not do beyond the reserved topics: topic filters
/// they may not publish to (<c>Mqtt:AnonymousDenyPublish</c>) and may not subscribe to or receive from
/// (<c>Mqtt:AnonymousDenySubscribe</c>), as a mosquitto ACL's deny entries would.
/// </summary>
/// <remarks>
/// A SUBSCRIBE whose filter lies within a denied filter is refused (SUBACK 0x80 on 3.1.1, 0x87 on 5.0). A broader
/// filter that only overlaps one (<c>#</c> against <c>test/nosubscribe</c>) is granted, and messages on denied
/// topics are then withheld from it at delivery, as the reserved topics are; a shared subscription cannot be
/// checked per delivery, so an overlapping one is refused.
/// </remarks>
internal sealed class AnonymousTopicRules
{
    private readonly byte[][] _denyPublish;
    private readonly byte[][] _denySubscribe;

    public AnonymousTopicRules(IEnumerable<string> denyPublish, IEnumerable<string> denySubscribe)
    {
        _denyPublish = [.. denyPublish.Select(Encoding.UTF8.GetBytes)];
        _denySubscribe = [.. denySubscribe.Select(Encoding.UTF8.GetBytes)];
    }

    /// <summary>Whether a subscription to <paramref name="filter"/> could match a denied topic, so that its deliveries need checking.</summary>
    public bool NeedsDeliveryCheck(ReadOnlySpan<byte> filter)
    {
        foreach (var denied in _denySubscribe)
        {
            if (TopicPatterns.Overlap(denied, filter))
            {
                return true;
            }
        }

        return false;
    }

    public bool MayPublish(ReadOnlySpan<byte> topic) => !ReservedTopics.IsReserved(topic) && !AnyMatches(_denyPublish, topic);

    /// <summary>Whether a subscription to <paramref name="filter"/> may be granted at all.</summary>
    public bool MaySubscribe(ReadOnlySpan<byte> filter)
    {
        foreach (var denied in _denySubscribe)
        {
            if (TopicPatterns.Covers(denied, filter))
            {
                return false;
            }
        }

        return true;
    }

    public bool MayReceive(ReadOnlySpan<byte> topic) => !ReservedTopics.IsReserved(topic) && !AnyMatches(_denySubscribe, topic);

    private static bool AnyMatches(byte[][] filters, ReadOnlySpan<byte> topic)
    {
        foreach (var filter in filters)
        {
            if (TopicPatterns.Matches(filter, topic))
            {
                return true;
            }
        }

        return false;
    }
}
