using System.Text.Json.Nodes;
using Fieldline.Core.Events;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Core.Tests.Events;

public sealed class EventBusTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task A_subscriber_gets_the_matching_events_and_resumes_after_the_last_one_it_saw()
    {
        var bus = new EventBus(new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        var first = bus.Publish(EventTypes.DeviceRegistered, "api", "a", new JsonObject { ["device_id"] = "a" });
        bus.Publish(EventTypes.DeviceRegistered, "api", "b", new JsonObject { ["device_id"] = "b" });
        bus.Publish(EventTypes.ShadowUpdated, "shadows", "a", new JsonObject { ["version"] = 1 });
        bus.Publish(EventTypes.DeviceDeleted, "api", "a", new JsonObject());

        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var replayed = new List<PlatformEvent>();
        await foreach (var e in bus.SubscribeAsync(new EventFilter(new HashSet<string> { EventTypes.ShadowUpdated, EventTypes.DeviceDeleted }, "a"), first.Sequence, cancel.Token))
        {
            replayed.Add(e);
            if (replayed.Count == 2)
            {
                break;
            }
        }

        Assert.Equal([EventTypes.ShadowUpdated, EventTypes.DeviceDeleted], replayed.Select(e => e.EventType));
        var json = replayed[0].ToJson();
        Assert.Equal(replayed[0].EventId, (string?)json["event_id"]);
        Assert.Equal("shadows", (string?)json["source"]);
        Assert.Equal("shadows", (string?)json["source_service"]);
        Assert.Equal("a", (string?)json["metadata"]!["device_id"]);
        Assert.Equal("2026-01-01T00:00:00.000Z", (string?)json["timestamp"]);
        Assert.Equal(1, (int)json["payload"]!["version"]!);
    }

    [Fact]
    public async Task Live_events_follow_the_replay_without_a_gap_and_a_subscriber_that_falls_behind_is_ended()
    {
        var bus = new EventBus(TimeProvider.System);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var live = bus.SubscribeAsync(EventFilter.Everything, afterEventId: 0, cancel.Token).GetAsyncEnumerator(cancel.Token);
        var firstMove = live.MoveNextAsync();

        bus.Publish(EventTypes.DeviceConnected, "mqtt", "a", new JsonObject());
        Assert.True(await firstMove);
        Assert.Equal(EventTypes.DeviceConnected, live.Current.EventType);

        // Nobody reads: the queue fills, and the subscriber is ended rather than slowing the publisher.
        for (var i = 0; i <= EventBus.SubscriberQueue; i++)
        {
            bus.Publish(EventTypes.DeviceDisconnected, "mqtt", "a", new JsonObject());
        }

        var received = 0;
        var ended = await Assert.ThrowsAsync<EventSubscriberLaggedException>(async () =>
        {
            while (await live.MoveNextAsync())
            {
                received++;
            }
        });
        Assert.Equal(EventBus.SubscriberQueue, received);
        Assert.Contains("resume", ended.Message, StringComparison.Ordinal);
    }
}
