using System.Text;
using System.Text.Unicode;
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
                    Session!.Acknowledge(packetId);
                    return true;
                }

            case MqttPacketType.PubRec:
                {
                    _broker.Metrics.PacketReceived(packetSize);
                    var packetId = MqttPacketDecoder.DecodeAck(frame.Flags, 0, GetBody(frame.Body).Span, Version, out var reason);
                    if (!Session!.Received(packetId, reason))
                    {
                        // Nothing in flight under that id (already completed before a reconnect): let the client finish.
                        WriteAck(MqttPacketType.PubRel, packetId, MqttReasonCode.PacketIdentifierNotFound);
                    }

                    return true;
                }

            case MqttPacketType.PubComp:
                {
                    _broker.Metrics.PacketReceived(packetSize);
                    var packetId = MqttPacketDecoder.DecodeAck(frame.Flags, 0, GetBody(frame.Body).Span, Version, out _);
                    Session!.CompleteQos2(packetId);
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
                _broker.Metrics.PacketReceived(packetSize);
                HandleReauthentication(MqttPacketDecoder.DecodeAuth(frame.Flags, GetBody(frame.Body).Span));
                return true;
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

        if (qos == 2 && Version == MqttProtocolVersion.V500 && session.IncomingQos2Count >= Options.ReceiveMaximum)
        {
            // A QoS 2 message holds a slot of the receive window until PUBREL (MQTT-3.3.4-9); one more than the
            // window announced in CONNACK is a protocol violation.
            throw new MqttProtocolException(MqttReasonCode.ReceiveMaximumExceeded, $"More than {Options.ReceiveMaximum} QoS 2 messages not released.");
        }

        var topic = ResolveTopicAlias(publish);
        if (publish.IsUtf8Payload && !Utf8.IsValid(publish.Payload.Span))
        {
            // The publisher said the payload is UTF-8 and it is not (3.3.2.3.2): refuse it rather than pass it on.
            RefusePublish(publish, MqttReasonCode.PayloadFormatInvalid, "The payload is not valid UTF-8 although the Payload Format Indicator says so.");
            return;
        }

        var properties = publish.Properties;
        if (publish.TopicAlias != 0 || publish.MessageExpirySeconds.HasValue)
        {
            // The broker writes Topic Alias and Message Expiry Interval per delivery; the rest is forwarded as is.
            var scratch = _propertiesScratch is { } buffer && buffer.Length >= properties.Length ? buffer : _propertiesScratch = new byte[Math.Max(64, properties.Length)];
            var length = MqttPacketDecoder.StripDeliveryProperties(properties.Span, publish.AliasPropertyRange, publish.ExpiryPropertyRange, scratch);
            properties = scratch.AsMemory(0, length);
        }

        if (!topic.Equals(publish.TopicUtf8) || !properties.Equals(publish.Properties))
        {
            publish = new MqttInboundPublish(topic, publish.Payload, properties, qos, publish.Retain, publish.Duplicate, publish.PacketId)
            {
                MessageExpirySeconds = publish.MessageExpirySeconds,
                IsUtf8Payload = publish.IsUtf8Payload,
            };
        }

        if (!_broker.Limits.AllowsTopicName(topic.Span))
        {
            RefusePublish(publish, MqttReasonCode.TopicNameInvalid, "The topic name is longer or deeper than the broker allows.");
            return;
        }

        var policy = _broker.Policy;
        if (!policy.CanPublish(client, topic.Span))
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

        DateTimeOffset? expiresAt = publish.MessageExpirySeconds is { } expiry ? _broker.TimeProvider.GetUtcNow().AddSeconds(expiry) : null;
        var route = new RouteRequest(topic.Span, publish.Payload.Span, properties.Span, qos, publish.Retain, expiresAt, session);

        // Retained first, then routed: a subscription made in between then gets the message twice (retained
        // and routed) rather than never.
        var reason = MqttReasonCode.Success;
        if (publish.Retain)
        {
            var message = MqttApplicationMessage.CopyOf(publish, expiresAt);
            if (_broker.Retained.TrySet(message))
            {
                route.Message = message;
                route.Stored = _broker.Store is not null;
            }
            else
            {
                reason = MqttReasonCode.QuotaExceeded;
            }
        }

        var backedUp = _broker.Route(ref route, _scratch);
        if (backedUp is not null)
        {
            _backedUpSubscriber = backedUp;
        }

        if (route.QuotaExceeded)
        {
            // Some subscriber's queue was full: the message reached the others, and a 5.0 publisher is told.
            reason = MqttReasonCode.QuotaExceeded;
        }

        if (qos == 2)
        {
            session.TryBeginIncomingQos2(publish.PacketId);
        }

        if (qos > 0 || decision.Completion is not null)
        {
            // A message kept in the state store for a persistent subscriber (or retained) is acknowledged once
            // that write is durable, like the policy's own completion: acknowledged means it survives a crash.
            var durable = route.Stored || (qos == 2 && _broker.Store is not null && session.IsPersistent) ? _broker.Store!.WhenDurable() : null;
            Acknowledge(publish.PacketId, qos, Version == MqttProtocolVersion.V500 ? reason : MqttReasonCode.Success, decision.Completion, durable);
        }
    }

    /// <summary>
    /// Resolves a 5.0 Topic Alias (3.3.2.3.4): a PUBLISH with a topic and an alias sets the alias, one with an
    /// alias alone uses it. Aliases are scoped to this connection; 0 or beyond the maximum is a protocol error.
    /// </summary>
    private ReadOnlyMemory<byte> ResolveTopicAlias(in MqttInboundPublish publish)
    {
        var alias = publish.TopicAlias;
        if (alias == 0)
        {
            return publish.TopicUtf8;
        }

        if (alias > Options.TopicAliasMaximum)
        {
            throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, $"Topic Alias {alias} is above the maximum {Options.TopicAliasMaximum}.");
        }

        _inboundAliases ??= new byte[]?[Options.TopicAliasMaximum + 1];
        if (publish.TopicUtf8.IsEmpty)
        {
            return _inboundAliases[alias] ?? throw MqttProtocolException.Protocol($"Topic Alias {alias} was never set.");
        }

        // Reuse the alias's buffer when the topic has the same length: re-setting an alias allocates nothing.
        var topic = publish.TopicUtf8.Span;
        var stored = _inboundAliases[alias];
        if (stored is null || stored.Length != topic.Length)
        {
            stored = _inboundAliases[alias] = new byte[topic.Length];
        }

        topic.CopyTo(stored);
        return stored;
    }

    private void RefusePublish(in MqttInboundPublish publish, MqttReasonCode reason, string why)
    {
        Log.RefusedWithReason(_broker.Logger, _context.ConnectionId, reason, why);
        if (publish.QualityOfService == 0)
        {
            // QoS 0 has no acknowledgement to carry the reason; the connection is closed with it (4.13).
            throw new MqttProtocolException(reason, why);
        }

        if (Version == MqttProtocolVersion.V311)
        {
            throw new MqttProtocolException(reason, why);
        }

        Acknowledge(publish.PacketId, publish.QualityOfService, reason, null);
    }

    private void HandleSubscribe(MqttSubscribePacket packet)
    {
        var session = Session!;
        var reasons = new MqttReasonCode[packet.Subscriptions.Count];
        List<TopicSubscription<MqttSession>>? retainedFor = null;
        List<string>? granted = null;
        for (var i = 0; i < reasons.Length; i++)
        {
            var subscription = packet.Subscriptions[i];
            var shared = SharedSubscriptionFilter.IsShared(subscription.Filter);
            var topicFilter = subscription.Filter;
            if (shared)
            {
                if (!SharedSubscriptionFilter.TryParse(subscription.Filter, out _, out topicFilter))
                {
                    reasons[i] = MqttReasonCode.TopicFilterInvalid;
                    continue;
                }

                if (subscription.NoLocal)
                {
                    // MQTT-3.8.3-4: No Local on a shared subscription is a protocol error.
                    throw MqttProtocolException.Protocol("No Local set on a shared subscription.");
                }
            }
            else if (!TopicFilter.IsValid(Encoding.UTF8.GetBytes(subscription.Filter)))
            {
                reasons[i] = MqttReasonCode.TopicFilterInvalid;
                continue;
            }

            if (!_broker.Limits.AllowsFilter(Encoding.UTF8.GetBytes(topicFilter)))
            {
                reasons[i] = MqttReasonCode.TopicFilterInvalid;
                continue;
            }

            // A shared group's messages go to one member each: they cannot be checked per member, so such a grant is a refusal.
            var authorization = _broker.Policy.AuthorizeSubscribe(Client!, topicFilter);
            if (authorization == MqttSubscribeAuthorization.Denied || (shared && authorization == MqttSubscribeAuthorization.GrantedWithDeliveryCheck))
            {
                _broker.Metrics.AuthorizationDenied("subscribe");
                reasons[i] = MqttReasonCode.NotAuthorized;
                continue;
            }

            var existed = session.HasSubscription(subscription.Filter);
            if (!existed && !_broker.Limits.AllowsAnotherSubscription(session.SubscriptionCount))
            {
                reasons[i] = MqttReasonCode.QuotaExceeded;
                continue;
            }

            var entry = new TopicSubscription<MqttSession>(session, subscription.Filter, subscription.MaximumQoS, subscription.NoLocal, subscription.RetainAsPublished, subscription.RetainHandling, packet.SubscriptionIdentifier)
            {
                ReceiveCheck = authorization == MqttSubscribeAuthorization.GrantedWithDeliveryCheck ? Client : null,
            };
            session.SetSubscription(entry);
            _broker.AddToTrees(session, entry);
            reasons[i] = (MqttReasonCode)subscription.MaximumQoS;

            // Retained messages go to a new subscription per its Retain Handling (3.8.3.1), never to a shared one (4.8.2).
            if (!shared && (subscription.RetainHandling == 0 || (subscription.RetainHandling == 1 && !existed)))
            {
                (retainedFor ??= []).Add(entry);
            }

            (granted ??= []).Add(subscription.Filter);
        }

        // SUBACK goes out once the subscriptions of a persistent session are durable, then the retained messages.
        var durable = _broker.Store is not null && session.IsPersistent ? _broker.Store.WhenDurable() : null;
        Acknowledge(0, 0, MqttReasonCode.Success, null, durable, () =>
        {
            WriteSubAck(packet.PacketId, reasons);
            if (retainedFor is not null)
            {
                SendRetained(session, retainedFor);
            }

            if (granted is not null)
            {
                _broker.Policy.OnSubscribed(Client!, granted);
            }
        });
    }

    private void SendRetained(MqttSession session, List<TopicSubscription<MqttSession>> subscriptions)
    {
        foreach (var subscription in subscriptions)
        {
            foreach (var message in _broker.Retained.Match(subscription.Filter))
            {
                if (subscription.ReceiveCheck is { } receiver && !_broker.Policy.CanReceive(receiver, message.TopicUtf8))
                {
                    continue;
                }

                var qos = Math.Min(message.QualityOfService, subscription.MaximumQoS);
                var identifiers = new SubscriptionIdentifiers(subscription.SubscriptionIdentifier);
                if (qos == 0)
                {
                    SendPublish(message.TopicUtf8, message.Payload.Span, message.Properties.Span, 0, retain: true, dup: false, packetId: 0, new MqttPublishExtras(_broker.RemainingExpiry(message.ExpiresAt), identifiers));
                }
                else
                {
                    session.Enqueue(message, (byte)qos, retain: true, identifiers, null, int.MaxValue, out _, out _);
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
            _broker.RemoveFromTrees(session, filter);
            reasons[i] = removed ? MqttReasonCode.Success : MqttReasonCode.NoSubscriptionExisted;
        }

        var durable = _broker.Store is not null && session.IsPersistent ? _broker.Store.WhenDurable() : null;
        Acknowledge(0, 0, MqttReasonCode.Success, null, durable, () => WriteUnsubAck(packet.PacketId, reasons));
    }

    private void HandleReauthentication(MqttAuthPacket auth)
    {
        // Re-authentication (4.12.1) continues the method of CONNECT; the hook is there for a policy that offers one.
        if (_authenticationMethod is null || auth.Reason != MqttReasonCode.ReAuthenticate || !string.Equals(auth.Method, _authenticationMethod, StringComparison.Ordinal))
        {
            throw MqttProtocolException.Protocol("AUTH without the authentication method of CONNECT.");
        }

        var step = _broker.Policy.AuthenticateExchangeAsync(Client!, _authenticationMethod, auth.Data, _broker.Stopping);
        if (!step.IsCompleted)
        {
            throw new MqttProtocolException(MqttReasonCode.ImplementationSpecificError, "Re-authentication must answer at once.");
        }

        var result = step.Result;
        if (result.ReasonCode == MqttReasonCode.Success)
        {
            WriteAuth(MqttReasonCode.Success, _authenticationMethod, result.Data);
        }
        else if (result.ReasonCode == MqttReasonCode.ContinueAuthentication)
        {
            WriteAuth(MqttReasonCode.ContinueAuthentication, _authenticationMethod, result.Data);
        }
        else
        {
            throw new MqttProtocolException(result.ReasonCode, "Re-authentication failed.");
        }
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
