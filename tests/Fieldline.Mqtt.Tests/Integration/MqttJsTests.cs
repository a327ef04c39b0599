using System.Text.Json;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>
/// MQTT 5.0 features between the broker and MQTT.js, the Node.js client, through Interop/mqttjs/scenarios.mjs. The
/// script checks what MQTT.js saw and reports it as JSON; these tests assert on that report.
/// </summary>
public sealed class MqttJsTests
{
    [Fact]
    public async Task User_properties_from_MQTT_js_reach_an_MQTT_js_subscriber_with_repeated_keys_in_order()
    {
        await using var broker = await TestBroker.StartAsync();
        var run = await MqttJsScenario.RunAsync(broker.Port, "user-properties");

        AssertSucceeded(run);
        var sent = run["sent"].GetRawText();
        var received = run["received"].EnumerateArray().ToList();
        Assert.Equal(["up/qos0", "up/qos1"], received.Select(m => m.GetProperty("topic").GetString()));
        Assert.All(received, m => Assert.True(m.GetProperty("userProperties").GetRawText() == sent, $"Expected user properties {sent}, seen {m}. {run.Describe()}"));
    }

    [Fact]
    public async Task An_expired_message_does_not_reach_a_late_MQTT_js_subscriber_and_the_remaining_interval_is_sent()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await TestBroker.StartAsync(timeProvider: time);
        var advanced = TimeSpan.Zero;
        var run = await MqttJsScenario.RunAsync(broker.Port, "message-expiry", pause =>
        {
            advanced = TimeSpan.FromSeconds(pause.GetProperty("advanceSeconds").GetInt32());
            time.Advance(advanced);
            return Task.CompletedTask;
        });

        AssertSucceeded(run);
        Assert.Equal(TimeSpan.FromSeconds(30), advanced);
        Assert.True(run["sessionPresent"].GetBoolean(), run.Describe());
        var received = run["received"].EnumerateArray().Select(m => (m.GetProperty("topic").GetString(), m.GetProperty("messageExpiryInterval").ToString())).ToList();
        Assert.Equal([("exp/long", "70"), ("exp/none", ""), ("exp/marker", "")], received);
    }

    [Fact]
    public async Task Topic_aliases_work_both_ways_between_MQTT_js_and_the_broker()
    {
        await using var broker = await TestBroker.StartAsync();
        var run = await MqttJsScenario.RunAsync(broker.Port, "topic-aliases");

        AssertSucceeded(run);
        Assert.Equal(15, run["received"].GetArrayLength());
        var wire = run["wire"].EnumerateArray().ToList();
        Assert.Contains(wire, p => p.GetProperty("topic").GetString() == "" && p.GetProperty("alias").ValueKind == JsonValueKind.Number);
        Assert.All(wire, p => Assert.True(p.GetProperty("alias").ValueKind == JsonValueKind.Null || p.GetProperty("alias").GetInt32() is >= 1 and <= 2, $"Alias beyond the subscriber's maximum of 2: {p}"));
        Assert.Contains(run["automaticSent"].EnumerateArray(), p => p.GetProperty("topic").GetString() == "");
    }

    [Fact]
    public async Task Shared_subscription_messages_are_split_over_two_MQTT_js_members_and_each_reaches_exactly_one()
    {
        await using var broker = await TestBroker.StartAsync();
        var run = await MqttJsScenario.RunAsync(broker.Port, "shared-subscription");

        AssertSucceeded(run);
        var perMember = run["perMember"].EnumerateObject().ToDictionary(m => m.Name, m => m.Value.EnumerateArray().Select(j => j.GetString()!).ToList());
        var all = perMember.Values.SelectMany(jobs => jobs).ToList();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"job-{i}").Order(), all.Order());
        Assert.All(perMember, m => Assert.True(m.Value.Count > 0, $"Member {m.Key} received no job. {run.Describe()}"));
    }

    [Fact]
    public async Task An_MQTT_js_responder_answers_on_the_response_topic_with_the_correlation_data_of_the_request()
    {
        await using var broker = await TestBroker.StartAsync();
        var run = await MqttJsScenario.RunAsync(broker.Port, "request-response");

        AssertSucceeded(run);
        var responses = run["responses"].EnumerateArray()
            .Select(m => (m.GetProperty("topic").GetString(), m.GetProperty("correlationData").GetString(), m.GetProperty("payload").GetString()))
            .OrderBy(r => r.Item3, StringComparer.Ordinal)
            .ToList();
        const string topic = "svc/clock/response/mqttjs-requester";
        Assert.Equal([(topic, "00ff10", "answer to r0"), (topic, "c3280102", "answer to r1"), (topic, "7265712d33", "answer to r2")], responses);
    }

    private static void AssertSucceeded(MqttJsResult run)
    {
        var failures = run.Json.TryGetProperty("failures", out var list) ? string.Join("\n  ", list.EnumerateArray()) : "(none listed)";
        Assert.True(run.ExitCode == 0 && run["ok"].GetBoolean(), $"MQTT.js scenario {run["scenario"]} failed:\n  {failures}\n{run.Describe()}");
    }
}
