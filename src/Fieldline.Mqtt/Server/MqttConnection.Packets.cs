using System.Text;
using Fieldline.Mqtt.Protocol;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Mqtt.Server;

/// <summary>Handling of each packet type after CONNECT.</summary>
internal sealed partial class MqttConnection
{
    /// <summary>Handles one packet; false when the connection is to close.</summary>
    private bool HandlePacket(in MqttFrame frame, int packetSize)
    {
        switch (frame.Type)
        {
            case MqttPacketType.Publish:
                _broker.Metrics.MessageReceived(packetSize);
                HandlePublish(frame.Flags, GetBody(frame.Body));
                return true;
            case MqttPacketType.PubAck:
                {
                    _broker.Metrics.PacketReceived(packetSize);
                    var packetId = MqttPacketDecoder.DecodeAck(frame.Flags, 0, GetBody(frame.Body).Span, Version, out _);
                    Session!.Acknowledge(packetId, Options.MaximumInflightPerClient);
                    return true;
                }

            case MqttPacketType.PubRel:
                {
                    _broker.Metrics.PacketReceived(packetSize);
                    var packetId = MqttPacketDecoder.DecodeAck(frame.Flags, 0x02, GetBody(frame.Body).Span, Version, out _);
                    var known = Session!.ReleaseIncomingQos2(packetId);
                    WriteAck(MqttPacketType.PubComp, packetId, known ? MqttReasonCode.Success : MqttReasonCode.PacketIdentifierNotFound);
                    return true;
                }

            case MqttPacketType.PubRec:
            case MqttPacketType.PubComp:
                // The broker never sends QoS 2, so these can only be stray; they are well-formed, so ignore them.
                _broker.Metrics.PacketReceived(packetSize);
                MqttPacketDecoder.DecodeAck(frame.Flags, 0, GetBody(frame.Body).Span, Version, out _);
                return true;
            case MqttPacketType.Subscribe:
                _broker.Metrics.PacketReceived(packetSize);
                HandleSubscribe(MqttPacketDecoder.DecodeSubscribe(frame.Flags, GetBody(frame.Body).Span, Version));
                return true;
            case MqttPacketType.Unsubscribe:
                _broker.Metrics.PacketReceived(packetSize);
                HandleUnsubscribe(MqttPacketDecoder.DecodeUnsubscribe(frame.Flags, GetBody(frame.Body).Span, Version));
                return true;
            case MqttPacketType.PingReq:
                _broker.Metrics.PacketReceived(packetSize);
                if (frame.Flags != 0 || frame.Body.Length != 0)
                {
                    throw MqttProtocolException.Malformed("Invalid PINGREQ.");
                }

                WritePingResp();
                return true;
            case MqttPacketType.Disconnect:
                _broker.Metrics.PacketReceived(packetSize);
                return HandleDisconnect(frame);
            case MqttPacketType.Connect:
                throw MqttProtocolException.Protocol("Second CONNECT.");
            case MqttPacketType.Auth when Version == MqttProtocolVersion.V500:
                throw MqttProtocolException.Protocol("AUTH without an authentication method.");
            default:
                throw Version == MqttProtocolVersion.V500
                    ? MqttProtocolException.Protocol($"Unexpected packet type {(int)frame.Type}.")
                    : MqttProtocolException.Malformed($"Unexpected packet type {(int)frame.Type}.");
        }
    }

    private void HandlePublish(byte flags, ReadOnlyMemory<byte> body)
    {
        var publish = MqttPacketDecoder.DecodePublish(flags, body, Version);
        var client = Client!;
        var session = Session!;
        var qos = publish.QualityOfService;

        if (qos == 2 && session.IsIncomingQos2(publish.PacketId))
        {
            // A retransmission of a QoS 2 message already received: acknowledge again, deliver nothing (4.3.3).
            Acknowledge(publish.PacketId, 2, MqttReasonCode.Success, null);
            return;
        }

        var policy = _broker.Policy;
        if (!policy.CanPublish(client, publish.TopicUtf8.Span))
        {
            _broker.Metrics.AuthorizationDenied("publish");

            // 3.1.1 cannot refuse a PUBLISH; it is acknowledged and dropped, as the issue of 3.1.1 clients demands.
            Acknowledge(publish.PacketId, qos, MqttReasonCode.NotAuthorized, null);
            return;
        }

        var decision = policy.OnPublish(client, publish);
        if (decision.ReasonCode != MqttReasonCode.Success)
        {
            Acknowledge(publish.PacketId, qos, decision.ReasonCode, null);
            return;
        }

        // Retained first, then routed: a subscription made in between then gets the message twice (retained
        // and routed) rather than never.
        if (publish.Retain)
        {
            _broker.Retained.Set(MqttApplicationMessage.CopyOf(publish));
        }

        var backedUp = _broker.Route(publish.TopicUtf8.Span, publish.Payload.Span, publish.Properties.Span, qos, publish.Retain, session, null, _scratch);
        if (backedUp is not null)
        {
            _backedUpSubscriber = backedUp;
        }

        if (qos == 2)
        {
            session.TryBeginIncomingQos2(publish.PacketId);
        }

        if (qos > 0 || decision.Completion is not null)
        {
            Acknowledge(publish.PacketId, qos, MqttReasonCode.Success, decision.Completion);
        }
    }

    private void HandleSubscribe(MqttSubscribePacket packet)
    {
        var session = Session!;
        var reasons = new MqttReasonCode[packet.Subscriptions.Count];
        List<(string Filter, byte Qos)>? retainedFor = null;
        for (var i = 0; i < reasons.Length; i++)
        {
            var subscription = packet.Subscriptions[i];
            var filterBytes = Encoding.UTF8.GetBytes(subscription.Filter);
            if (!TopicFilter.IsValid(filterBytes))
            {
                reasons[i] = MqttReasonCode.TopicFilterInvalid;
                continue;
            }

            if (subscription.Filter.StartsWith("$share/", StringComparison.Ordinal))
            {
                reasons[i] = MqttReasonCode.SharedSubscriptionsNotSupported;
                continue;
            }

            if (!_broker.Policy.CanSubscribe(Client!, subscription.Filter))
            {
                _broker.Metrics.AuthorizationDenied("subscribe");
                reasons[i] = MqttReasonCode.NotAuthorized;
                continue;
            }

            // QoS 2 deliveries are not offered yet: a QoS 2 request is granted QoS 1 (MQTT-3.9.3: a lower grant is allowed).
            var granted = Math.Min(subscription.MaximumQoS, (byte)1);
            var existed = session.HasSubscription(subscription.Filter);
            var entry = new TopicSubscription<MqttSession>(session, subscription.Filter, granted, subscription.NoLocal, subscription.RetainAsPublished, subscription.RetainHandling);
            session.SetSubscription(entry);
            _broker.Subscriptions.Add(subscription.Filter, session, entry);
            reasons[i] = (MqttReasonCode)granted;
            if (subscription.RetainHandling == 0 || (subscription.RetainHandling == 1 && !existed))
            {
                (retainedFor ??= []).Add((subscription.Filter, granted));
            }
        }

        WriteSubAck(packet.PacketId, reasons);
        if (retainedFor is null)
        {
            return;
        }

        foreach (var (filter, granted) in retainedFor)
        {
            foreach (var message in _broker.Retained.Match(filter))
            {
                var qos = Math.Min(message.QualityOfService, granted);
                if (qos == 0)
                {
                    SendPublish(message.TopicUtf8, message.Payload.Span, message.Properties.Span, 0, retain: true, dup: false, packetId: 0);
                }
                else
                {
                    session.EnqueueQos1(message, retain: true, Options.MaximumQueuedMessagesPerSession, Options.MaximumInflightPerClient, int.MaxValue, out _, out _);
                }
            }
        }
    }

    private void HandleUnsubscribe(MqttUnsubscribePacket packet)
    {
        var session = Session!;
        var reasons = new MqttReasonCode[packet.Filters.Count];
        for (var i = 0; i < reasons.Length; i++)
        {
            var filter = packet.Filters[i];
            var removed = session.RemoveSubscription(filter);
            _broker.Subscriptions.Remove(filter, session);
            reasons[i] = removed ? MqttReasonCode.Success : MqttReasonCode.NoSubscriptionExisted;
        }

        WriteUnsubAck(packet.PacketId, reasons);
    }

    private bool HandleDisconnect(in MqttFrame frame)
    {
        var reason = MqttPacketDecoder.DecodeDisconnect(frame.Flags, GetBody(frame.Body).Span, Version, out var sessionExpiry);
        if (sessionExpiry is { } expiry)
        {
            // A session that was to end with the connection cannot be extended at DISCONNECT (MQTT-3.14.2-2).
            if (_connectSessionExpiry == 0 && expiry != 0)
            {
                throw MqttProtocolException.Protocol("Session expiry set at DISCONNECT after CONNECT asked for none.");
            }

            Session!.ExpirySeconds = expiry;
        }

        // Only a normal disconnection (0x00) discards the will; 0x04 and any error reason publish it (3.14.2.1).
        _closeKind = reason == MqttReasonCode.Success ? MqttDisconnectKind.Clean : MqttDisconnectKind.CleanWithWill;
        Interlocked.Exchange(ref _closeRequested, 1);
        return false;
    }
}
