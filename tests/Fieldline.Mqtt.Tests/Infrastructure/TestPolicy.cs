using Fieldline.Mqtt.Server;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>A policy whose every hook a test can replace.</summary>
public sealed class TestPolicy : MqttBrokerPolicy
{
    public delegate MqttPublishDecision PublishHook(MqttClientContext client, in MqttInboundPublish publish);

    public Func<MqttClientContext, ReadOnlyMemory<byte>, MqttReasonCode>? Authenticate { get; init; }

    public Func<string, bool>? AllowPublish { get; init; }

    public Func<string, bool>? AllowSubscribe { get; init; }

    public PublishHook? Publish { get; init; }

    public Func<string, ReadOnlyMemory<byte>, MqttAuthenticationStep>? Exchange { get; init; }

    public Func<string, MqttSubscribeAuthorization>? Authorize { get; init; }

    public Func<string, bool>? Receive { get; init; }

    public Action<MqttClientContext, IReadOnlyList<string>>? Subscribed { get; init; }

    public override ValueTask<MqttReasonCode> AuthenticateAsync(MqttClientContext client, ReadOnlyMemory<byte> password, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Authenticate?.Invoke(client, password) ?? MqttReasonCode.Success);

    public override ValueTask<MqttAuthenticationStep> AuthenticateExchangeAsync(MqttClientContext client, string method, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        Exchange is null ? base.AuthenticateExchangeAsync(client, method, data, cancellationToken) : ValueTask.FromResult(Exchange(method, data));

    public override bool CanPublish(MqttClientContext client, ReadOnlySpan<byte> topic) =>
        AllowPublish is null ? base.CanPublish(client, topic) : AllowPublish(System.Text.Encoding.UTF8.GetString(topic));

    public override bool CanSubscribe(MqttClientContext client, string filter) => AllowSubscribe?.Invoke(filter) ?? true;

    public override MqttSubscribeAuthorization AuthorizeSubscribe(MqttClientContext client, string filter) =>
        Authorize?.Invoke(filter) ?? base.AuthorizeSubscribe(client, filter);

    public override bool CanReceive(MqttClientContext client, ReadOnlySpan<byte> topic) =>
        Receive?.Invoke(System.Text.Encoding.UTF8.GetString(topic)) ?? true;

    public override MqttPublishDecision OnPublish(MqttClientContext client, in MqttInboundPublish publish) =>
        Publish is null ? MqttPublishDecision.Accept : Publish(client, publish);

    public override void OnSubscribed(MqttClientContext client, IReadOnlyList<string> filters) => Subscribed?.Invoke(client, filters);
}
