using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;

namespace Fieldline.Broker;

/// <summary>
/// Requests from a device to the platform, MQTT 5 style: the device publishes to <c>device/{id}/rpc/{method}</c>
/// with a Response Topic (under its own <c>device/{id}/</c>) and usually Correlation Data; the answer goes to that
/// topic with the same Correlation Data. Without a Response Topic (3.1.1) the answer goes to
/// <c>device/{id}/rpc/{method}/response</c>. Methods: <c>ping</c> (<c>{"pong":true,"timestamp"}</c>) and <c>time</c>
/// (<c>{"time_ms","time"}</c>, the server's clock for devices without one); any other gets
/// <c>{"error":"unknown method ..."}</c>.
/// </summary>
internal sealed class DeviceRequestTopics
{
    private readonly Lazy<MqttBroker> _broker;
    private readonly TimeProvider _timeProvider;

    public DeviceRequestTopics(IServiceProvider services, TimeProvider timeProvider)
    {
        _broker = new Lazy<MqttBroker>(services.GetRequiredService<MqttBroker>);
        _timeProvider = timeProvider;
    }

    /// <summary>
    /// Answers a device's PUBLISH to <c>device/{id}/rpc/{method}</c>; null when <paramref name="suffix"/> (the topic
    /// after <c>device/{id}/</c>) is not <c>rpc/{method}</c>. A Response Topic
    /// outside the device's own topics is refused (0x87): the platform must not publish for it elsewhere.
    /// </summary>
    public MqttPublishDecision? TryHandle(DeviceIdentity device, ReadOnlySpan<byte> suffix, in MqttInboundPublish publish)
    {
        if (!suffix.StartsWith("rpc/"u8))
        {
            return null;
        }

        var deviceId = device.DeviceId;
        var method = Encoding.UTF8.GetString(suffix["rpc/"u8.Length..]);
        if (method.Length == 0 || method.Contains('/', StringComparison.Ordinal))
        {
            // Not a request (for example the device's own .../response topic).
            return null;
        }

        string responseTopic;
        byte[] properties;
        if (publish.TryGetResponseTopic(out var requested, out var correlation))
        {
            if (!requested.StartsWith(device.DevicePrefix))
            {
                return MqttPublishDecision.Refuse(MqttReasonCode.NotAuthorized);
            }

            responseTopic = Encoding.UTF8.GetString(requested);
            properties = correlation.IsEmpty ? [] : MqttApplicationMessage.CorrelationDataProperties(correlation);
        }
        else
        {
            responseTopic = $"device/{deviceId}/rpc/{method}/response";
            properties = [];
        }

        var answer = Answer(method);
        _broker.Value.Publish(new MqttApplicationMessage(Encoding.UTF8.GetBytes(responseTopic), Encoding.UTF8.GetBytes(answer.ToJsonString()), qualityOfService: 1, retain: false, properties));
        return MqttPublishDecision.Accept;
    }

    private JsonObject Answer(string method)
    {
        var now = _timeProvider.GetUtcNow();
        return method switch
        {
            "ping" => new JsonObject { ["pong"] = true, ["timestamp"] = now.ToUnixTimeSeconds() },
            "time" => new JsonObject
            {
                ["time_ms"] = now.ToUnixTimeMilliseconds(),
                ["time"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            },
            _ => new JsonObject { ["error"] = $"unknown method '{method}'; the methods are ping and time" },
        };
    }
}
