using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// The members of one shared subscription (<c>$share/{group}/{filter}</c>): each message matching the filter goes
/// to one of them.
/// </summary>
/// <remarks>
/// Design note. Members are picked round-robin, preferring one that is connected and has room in its window; a
/// member whose window is full (it stopped acknowledging) is passed over while any other can take the message,
/// and a member that disconnects hands its unacknowledged messages of this group to the others
/// (<see cref="MqttBroker"/> does that when the session detaches). When no member is connected, a QoS 1/2 message
/// waits in a persistent member's queue, and a QoS 0 one is dropped. The member list is copied on write, so the
/// routing path reads it without a lock.
/// </remarks>
internal sealed class SharedSubscriptionGroup
{
    private readonly Lock _sync = new();
    private TopicSubscription<MqttSession>[] _members = [];
    private int _next;

    public SharedSubscriptionGroup(string filter, string shareName, string topicFilter)
    {
        Filter = filter;
        ShareName = shareName;
        TopicFilter = topicFilter;
    }

    /// <summary>The whole filter, <c>$share/{group}/{filter}</c>.</summary>
    public string Filter { get; }

    public string ShareName { get; }

    public string TopicFilter { get; }

    public int MemberCount => Volatile.Read(ref _members).Length;

    public void Add(TopicSubscription<MqttSession> member)
    {
        lock (_sync)
        {
            var members = _members;
            var index = Array.FindIndex(members, m => m.Subscriber == member.Subscriber);
            _members = index >= 0 ? [.. members[..index], member, .. members[(index + 1)..]] : [.. members, member];
        }
    }

    /// <summary>Removes a member; returns how many remain.</summary>
    public int Remove(MqttSession session)
    {
        lock (_sync)
        {
            _members = [.. _members.Where(m => m.Subscriber != session)];
            return _members.Length;
        }
    }

    /// <summary>
    /// Picks the member for the next message: the next connected member with room in its window, else the next
    /// connected one, else (for QoS 1/2) the next persistent one; null when none can take it.
    /// </summary>
    public TopicSubscription<MqttSession>? Pick(byte qos, MqttSession? except = null)
    {
        var members = Volatile.Read(ref _members);
        if (members.Length == 0)
        {
            return null;
        }

        var start = (int)((uint)Interlocked.Increment(ref _next) % (uint)members.Length);
        TopicSubscription<MqttSession>? connected = null;
        TopicSubscription<MqttSession>? persistent = null;
        for (var i = 0; i < members.Length; i++)
        {
            var member = members[(start + i) % members.Length];
            var session = member.Subscriber;
            if (session == except)
            {
                continue;
            }

            if (session.Connection is not null)
            {
                if (session.HasRoom)
                {
                    return member;
                }

                connected ??= member;
            }
            else if (session.IsPersistent)
            {
                persistent ??= member;
            }
        }

        return connected ?? (qos > 0 ? persistent : null);
    }
}
