using System.Collections.Concurrent;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>
/// The broker's durable state: what a persistent session was promised and what was retained survives kill -9,
/// because the publisher's acknowledgement follows the state store's write.
/// </summary>
public sealed class BrokerCrashTests
{
    private const string AdminKey = "broker-crash-admin-key-0123456789";

    [Fact]
    public async Task Queued_QoS_1_and_QoS_2_messages_for_an_offline_persistent_session_survive_a_kill_9()
    {
        const int perQos = 200;
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            using (var first = await FieldlineProcess.StartAsync(dataDir, AdminKey))
            {
                using (var subscriber = await ConnectAsync(first.MqttPort, "durable-sub", cleanStart: true))
                {
                    var granted = await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("jobs/#", MqttQualityOfServiceLevel.ExactlyOnce).Build());
                    Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS2, granted.Items.Single().ResultCode);
                    await subscriber.DisconnectAsync();
                }

                using var publisher = await ConnectAsync(first.MqttPort, "publisher", cleanStart: true, persistent: false);
                var publishes = new List<Task<MqttClientPublishResult>>();
                for (var i = 0; i < perQos; i++)
                {
                    publishes.Add(publisher.PublishAsync(Message($"jobs/q1/{i}", $"q1-{i}", MqttQualityOfServiceLevel.AtLeastOnce)));
                    publishes.Add(publisher.PublishAsync(Message($"jobs/q2/{i}", $"q2-{i}", MqttQualityOfServiceLevel.ExactlyOnce)));
                }

                publishes.Add(publisher.PublishAsync(Message("config/line-1", "retained-config", MqttQualityOfServiceLevel.AtLeastOnce, retain: true)));
                var results = await Task.WhenAll(publishes);
                Assert.All(results, r => Assert.Equal(MqttClientPublishReasonCode.Success, r.ReasonCode));

                // Every acknowledgement is in: kill the server without any chance to flush.
                first.KillHard();
            }

            using var second = await FieldlineProcess.StartAsync(dataDir, AdminKey);
            var received = new ConcurrentQueue<MqttApplicationMessage>();
            using var back = await ConnectAsync(second.MqttPort, "durable-sub", cleanStart: false, onMessage: received.Enqueue);
            await Poll.UntilAsync(() => Task.FromResult(received.Count), c => c >= 2 * perQos, $"{2 * perQos} queued messages after the restart", TimeSpan.FromSeconds(30));

            var payloads = received.Select(m => m.ConvertPayloadToString()).ToList();
            var qos2 = payloads.Where(p => p!.StartsWith("q2-", StringComparison.Ordinal)).ToList();
            var qos1 = payloads.Where(p => p!.StartsWith("q1-", StringComparison.Ordinal)).ToList();
            Assert.Equal(Enumerable.Range(0, perQos).Select(i => $"q2-{i}"), qos2); // exactly once, in order
            Assert.Equal(Enumerable.Range(0, perQos).Select(i => $"q1-{i}"), qos1.Distinct()); // at least once, in order

            // The retained message is there for a new subscriber.
            var late = new ConcurrentQueue<MqttApplicationMessage>();
            using var lateSubscriber = await ConnectAsync(second.MqttPort, "late", cleanStart: true, persistent: false, onMessage: late.Enqueue);
            await lateSubscriber.SubscribeAsync("config/#", MqttQualityOfServiceLevel.AtLeastOnce);
            await Poll.UntilAsync(() => Task.FromResult(late.Count), c => c > 0, "the retained message after the restart");
            Assert.Equal("retained-config", late.Single().ConvertPayloadToString());
            Assert.True(late.Single().Retain);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Subscriptions_of_a_persistent_session_survive_a_kill_9()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            using (var first = await FieldlineProcess.StartAsync(dataDir, AdminKey))
            {
                using var subscriber = await ConnectAsync(first.MqttPort, "keeps-subs", cleanStart: true);
                await subscriber.SubscribeAsync("alerts/#", MqttQualityOfServiceLevel.AtLeastOnce);
                first.KillHard();
            }

            using var second = await FieldlineProcess.StartAsync(dataDir, AdminKey);
            var received = new ConcurrentQueue<MqttApplicationMessage>();
            using var back = await ConnectAsync(second.MqttPort, "keeps-subs", cleanStart: false, onMessage: received.Enqueue);
            using var publisher = await ConnectAsync(second.MqttPort, "publisher", cleanStart: true, persistent: false);
            await publisher.PublishAsync(Message("alerts/fire", "fire", MqttQualityOfServiceLevel.AtLeastOnce));
            await Poll.UntilAsync(() => Task.FromResult(received.Count), c => c > 0, "a message through the subscription made before the kill");
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static MqttApplicationMessage Message(string topic, string payload, MqttQualityOfServiceLevel qos, bool retain = false) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).WithRetainFlag(retain).Build();

    private static async Task<IMqttClient> ConnectAsync(int port, string clientId, bool cleanStart, bool persistent = true, Action<MqttApplicationMessage>? onMessage = null)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        if (onMessage is not null)
        {
            client.ApplicationMessageReceivedAsync += e =>
            {
                onMessage(e.ApplicationMessage);
                return Task.CompletedTask;
            };
        }

        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithClientId(clientId)
            .WithCredentials("$admin", AdminKey)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithCleanStart(cleanStart)
            .WithSessionExpiryInterval(persistent ? 3600u : 0u)
            .WithTimeout(TimeSpan.FromSeconds(30))
            .Build();
        await client.ConnectAsync(options);
        return client;
    }
}
