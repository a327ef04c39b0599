using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fieldline.Core.Shadows;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Broker;

/// <summary>
/// A device's shadow over MQTT, under its own topics as AWS IoT does it:
/// <list type="bullet">
/// <item><c>device/{id}/shadow/update</c> with <c>{"state":{"reported":{...}}}</c> (desired too) →
/// <c>.../update/accepted</c> with the shadow document, or <c>.../update/rejected</c> with <c>{"code","message"}</c>;</item>
/// <item><c>device/{id}/shadow/get</c> → <c>.../get/accepted</c> (or <c>.../get/rejected</c>);</item>
/// <item><c>device/{id}/shadow/delta</c> whenever the delta changes and is not empty, and when the device
/// subscribes to it (so that a device coming back online gets the current delta without asking).</item>
/// </list>
/// Answers carry the request's <c>clientToken</c>. The PUBACK of a request follows the durable write of the shadow
/// and the answer.
/// </summary>
internal sealed partial class DeviceShadowTopics : IDisposable
{
    private readonly ShadowService _shadows;
    private readonly Lazy<MqttBroker> _broker;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<DeviceShadowTopics> _logger;

    public DeviceShadowTopics(ShadowService shadows, IServiceProvider services, TimeProvider timeProvider, ILogger<DeviceShadowTopics> logger)
    {
        _shadows = shadows;

        // The broker is built with the policy that uses this class: it is looked up on first use, not injected.
        _broker = new Lazy<MqttBroker>(services.GetRequiredService<MqttBroker>);
        _timeProvider = timeProvider;
        _logger = logger;
        _shadows.Changed += OnChanged;
    }

    /// <summary>
    /// Handles a device's PUBLISH to one of its shadow request topics; null when <paramref name="suffix"/> (the topic
    /// after <c>device/{id}/</c>) is not one. The task completes when the request was handled and answered.
    /// </summary>
    public Task? TryHandle(string deviceId, ReadOnlySpan<byte> suffix, ReadOnlyMemory<byte> payload)
    {
        if (suffix.SequenceEqual("shadow/update"u8))
        {
            return HandleUpdateAsync(deviceId, payload.ToArray());
        }

        if (suffix.SequenceEqual("shadow/get"u8))
        {
            return HandleGetAsync(deviceId, payload.ToArray());
        }

        return null;
    }

    /// <summary>A device subscribed: when a filter covers its delta topic and the delta is not empty, it is sent now.</summary>
    public void OnDeviceSubscribed(string deviceId, IReadOnlyList<string> filters)
    {
        var deltaTopic = Encoding.UTF8.GetBytes(Topic(deviceId, "delta"));
        if (!filters.Any(f => TopicFilter.Matches(Encoding.UTF8.GetBytes(f), deltaTopic)))
        {
            return;
        }

        _ = SendCurrentDeltaAsync(deviceId);
    }

    public void Dispose() => _shadows.Changed -= OnChanged;

    private async Task SendCurrentDeltaAsync(string deviceId)
    {
        try
        {
            var outcome = await _shadows.GetAsync(deviceId, CancellationToken.None).ConfigureAwait(false);
            if (outcome.Shadow is { Delta.Count: > 0 } shadow)
            {
                PublishDelta(shadow);
            }
        }
        catch (Exception e)
        {
            LogDeltaFailed(_logger, deviceId, e);
        }
    }

    private async Task HandleUpdateAsync(string deviceId, byte[] payload)
    {
        if (!TryParse(payload, out var body, out var error))
        {
            Reject(deviceId, "update", 400, error, clientToken: null);
            return;
        }

        if (ShadowUpdateRequest.Parse(body, out var request) is { } errors)
        {
            Reject(deviceId, "update", 400, string.Join("; ", errors.Select(e => $"{e.Key} {string.Join(", ", e.Value)}")), ClientTokenOf(body));
            return;
        }

        var outcome = await _shadows.UpdateAsync(deviceId, request!.Update, ShadowWriter.Device, request.Version, CancellationToken.None).ConfigureAwait(false);
        Answer(deviceId, "update", outcome, request.ClientToken);
    }

    private async Task HandleGetAsync(string deviceId, byte[] payload)
    {
        // An empty payload is a plain get; a JSON one may carry a clientToken.
        string? clientToken = null;
        if (payload.Length > 0)
        {
            if (!TryParse(payload, out var body, out var error))
            {
                Reject(deviceId, "get", 400, error, clientToken: null);
                return;
            }

            clientToken = ClientTokenOf(body);
        }

        var outcome = await _shadows.GetAsync(deviceId, CancellationToken.None).ConfigureAwait(false);
        Answer(deviceId, "get", outcome, clientToken);
    }

    private void Answer(string deviceId, string operation, ShadowOutcome outcome, string? clientToken)
    {
        if (!outcome.Succeeded)
        {
            Reject(deviceId, operation, CodeOf(outcome.Status), outcome.Message ?? outcome.Status.ToString(), clientToken);
            return;
        }

        var document = outcome.Shadow!.ToDocument();
        if (clientToken is not null)
        {
            document["clientToken"] = clientToken;
        }

        Publish(Topic(deviceId, $"{operation}/accepted"), document);
    }

    private void Reject(string deviceId, string operation, int code, string message, string? clientToken)
    {
        var document = new JsonObject
        {
            ["code"] = code,
            ["message"] = message,
            ["timestamp"] = _timeProvider.GetUtcNow().ToUnixTimeSeconds(),
        };
        if (clientToken is not null)
        {
            document["clientToken"] = clientToken;
        }

        Publish(Topic(deviceId, $"{operation}/rejected"), document);
    }

    private void OnChanged(ShadowChange change)
    {
        var after = change.After;
        if (after.Delta.Count > 0 && !JsonNode.DeepEquals(change.Before.Delta, after.Delta))
        {
            PublishDelta(after);
        }
    }

    private void PublishDelta(DeviceShadow shadow) => Publish(
        Topic(shadow.DeviceId, "delta"),
        new JsonObject
        {
            ["state"] = shadow.Delta.DeepClone(),
            ["version"] = shadow.Version,
            ["timestamp"] = shadow.UpdatedAt?.ToUnixTimeSeconds(),
        });

    private void Publish(string topic, JsonObject document) =>
        _broker.Value.Publish(new MqttApplicationMessage(topic, Encoding.UTF8.GetBytes(document.ToJsonString()), qualityOfService: 1));

    private static bool TryParse(byte[] payload, out JsonNode? body, out string error)
    {
        try
        {
            body = JsonNode.Parse(payload);
            error = "";
            return true;
        }
        catch (JsonException e)
        {
            body = null;
            error = $"The payload is not valid JSON: {e.Message}";
            return false;
        }
    }

    private static string? ClientTokenOf(JsonNode? body) =>
        body is JsonObject root && root["clientToken"] is JsonValue value && value.TryGetValue<string>(out var token) && token.Length <= ShadowUpdateRequest.MaximumClientTokenLength
            ? token
            : null;

    private static int CodeOf(ShadowStatus status) => status switch
    {
        ShadowStatus.DeviceNotFound => 404,
        ShadowStatus.VersionConflict => 409,
        ShadowStatus.TooLarge => 413,
        ShadowStatus.Forbidden => 403,
        _ => 400,
    };

    private static string Topic(string deviceId, string suffix) => $"device/{deviceId}/shadow/{suffix}";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not send the shadow delta of device {DeviceId}")]
    private static partial void LogDeltaFailed(ILogger logger, string deviceId, Exception exception);
}
