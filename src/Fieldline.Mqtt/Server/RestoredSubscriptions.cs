using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// Authorizes the subscriptions of a session read back from the state store. A delivery check
/// (<see cref="MqttSubscribeAuthorization.GrantedWithDeliveryCheck"/>) belongs to the client that subscribed and is
/// not stored, so without this a restarted broker would deliver unchecked what that client must not read.
/// </summary>
internal static class RestoredSubscriptions
{
    /// <summary>
    /// Asks <see cref="MqttBrokerPolicy.AuthorizeRestoredSubscription"/> for each subscription of a restored
    /// session: drops refused ones (from the store too), attaches the delivery check where the policy wants one,
    /// and returns the subscriptions to route to.
    /// </summary>
    public static List<TopicSubscription<MqttSession>> Authorize(MqttBroker broker, MqttSession session)
    {
        // The session's owner as the policy sees a client; no one is connected, so no address and no identity yet.
        var owner = new MqttClientContext(session.ClientId, session.Owner, MqttProtocolVersion.V500, remoteEndPoint: null, connectionId: "restored");
        var kept = new List<TopicSubscription<MqttSession>>();
        foreach (var subscription in session.GetSubscriptions())
        {
            var shared = SharedSubscriptionFilter.TryParse(subscription.Filter, out _, out var topicFilter);
            var authorization = broker.Policy.AuthorizeRestoredSubscription(owner, shared ? topicFilter : subscription.Filter);
            if (authorization == MqttSubscribeAuthorization.Granted)
            {
                kept.Add(subscription);
            }
            else if (authorization == MqttSubscribeAuthorization.GrantedWithDeliveryCheck && !shared)
            {
                var checkedSubscription = subscription with { ReceiveCheck = owner };
                session.SetSubscription(checkedSubscription);
                kept.Add(checkedSubscription);
            }
            else
            {
                session.RemoveSubscription(subscription.Filter);
                Log.RestoredSubscriptionDropped(broker.Logger, session.ClientId, subscription.Filter);
            }
        }

        return kept;
    }
}
