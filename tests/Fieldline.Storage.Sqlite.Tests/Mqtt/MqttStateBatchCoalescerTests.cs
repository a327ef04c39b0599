using Fieldline.Mqtt.Persistence;
using Fieldline.Storage.Sqlite.Mqtt;
using Microsoft.Extensions.Logging.Abstractions;
using static Fieldline.Storage.Sqlite.Tests.Mqtt.MqttStoreFixture;

namespace Fieldline.Storage.Sqlite.Tests.Mqtt;

public sealed class MqttStateBatchCoalescerTests : IAsyncLifetime
{
    private readonly MqttStoreFixture fixture = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => fixture.DisposeAsync().AsTask();

    [Fact]
    public void A_delivery_put_sent_and_removed_in_one_batch_leaves_nothing_to_write()
    {
        var batch = new List<MqttStateChange>
        {
            Put("a", Delivery(1, 10, Message("t/1", "x"))),
            Update("a", 1, packetId: 7, MqttDeliveryState.Sent),
            Remove("a", 1),
        };

        var remaining = new MqttStateBatchCoalescer().Coalesce(batch);

        Assert.Equal(0, remaining);
        Assert.All(batch, change => Assert.Equal(MqttStateChangeKind.Skipped, change.Kind));
    }

    [Fact]
    public void An_update_of_a_delivery_put_in_the_same_batch_is_folded_into_the_put()
    {
        var batch = new List<MqttStateChange>
        {
            Put("a", Delivery(1, 10, Message("t/1", "x"))),
            Update("a", 1, packetId: 7, MqttDeliveryState.Sent),
            Update("a", 1, packetId: 7, MqttDeliveryState.Released),
        };

        var remaining = new MqttStateBatchCoalescer().Coalesce(batch);

        Assert.Equal(1, remaining);
        Assert.Equal(MqttStateChangeKind.PutDelivery, batch[0].Kind);
        Assert.Equal(7, batch[0].PacketId);
        Assert.Equal(MqttDeliveryState.Released, batch[0].State);
        Assert.Equal(MqttStateChangeKind.Skipped, batch[1].Kind);
        Assert.Equal(MqttStateChangeKind.Skipped, batch[2].Kind);
    }

    [Fact]
    public void Changes_of_deliveries_put_in_an_earlier_batch_or_of_other_sessions_are_kept()
    {
        var batch = new List<MqttStateChange>
        {
            Put("a", Delivery(1, 10, Message("t/1", "x"))),
            Update("b", 1, packetId: 3, MqttDeliveryState.Sent),
            Remove("b", 1),
            Update("a", 2, packetId: 4, MqttDeliveryState.Sent),
            Remove("a", 2),
        };

        var remaining = new MqttStateBatchCoalescer().Coalesce(batch);

        Assert.Equal(5, remaining);
        Assert.Equal(
            [MqttStateChangeKind.PutDelivery, MqttStateChangeKind.UpdateDelivery, MqttStateChangeKind.RemoveDelivery, MqttStateChangeKind.UpdateDelivery, MqttStateChangeKind.RemoveDelivery],
            batch.Select(change => change.Kind));
    }

    [Fact]
    public void A_session_removal_keeps_earlier_puts_from_cancelling_against_a_new_session_with_the_same_sequence()
    {
        var batch = new List<MqttStateChange>
        {
            Put("a", Delivery(1, 10, Message("t/1", "old"))),
            new(MqttStateChangeKind.RemoveSession, "a", null),
            Put("a", Delivery(1, 11, Message("t/1", "new"))),
            Remove("a", 1),
        };

        var remaining = new MqttStateBatchCoalescer().Coalesce(batch);

        Assert.Equal(2, remaining);
        Assert.Equal(
            [MqttStateChangeKind.PutDelivery, MqttStateChangeKind.RemoveSession, MqttStateChangeKind.Skipped, MqttStateChangeKind.Skipped],
            batch.Select(change => change.Kind));
    }

    [Fact]
    public async Task A_coalesced_batch_stores_what_applying_every_change_in_order_would()
    {
        // Two sessions get one message; "a" acknowledges within the batch, "b" does not, and "b" has a second
        // delivery that is sent within the batch. "b" keeps both, with the content and the state sent.
        var shared = Message("t/shared", "payload");
        var alone = Message("t/alone", "second");
        using (var writer = MqttStateWriter.Open(fixture.DatabasePath, NullLogger.Instance))
        {
            writer.Apply(
            [
                new(MqttStateChangeKind.PutSession, "a", Session("a")),
                new(MqttStateChangeKind.PutSession, "b", Session("b")),
                Put("a", Delivery(1, 10, shared)),
                Put("b", Delivery(1, 10, shared)),
                Put("b", Delivery(2, 11, alone)),
                Update("a", 1, packetId: 5, MqttDeliveryState.Sent),
                Update("b", 2, packetId: 9, MqttDeliveryState.Sent),
                Remove("a", 1),
            ]);
        }

        Assert.Equal(2, fixture.CountRows("delivery"));
        await using var store = fixture.Open();
        var state = await store.LoadAsync(CancellationToken.None);
        Assert.Empty(Find(state, "a").Deliveries);
        var deliveries = Find(state, "b").Deliveries;
        Assert.Equal(2, deliveries.Count);
        AssertDelivery(Delivery(1, 10, shared), deliveries[0]);
        AssertDelivery(Delivery(2, 11, alone, state: MqttDeliveryState.Sent, packetId: 9), deliveries[1]);
    }

    private static MqttStateChange Put(string clientId, MqttStoredDelivery delivery) =>
        new(MqttStateChangeKind.PutDelivery, clientId, delivery, delivery.Sequence, delivery.PacketId, delivery.State);

    private static MqttStateChange Update(string clientId, long sequence, ushort packetId, MqttDeliveryState state) =>
        new(MqttStateChangeKind.UpdateDelivery, clientId, null, sequence, packetId, state);

    private static MqttStateChange Remove(string clientId, long sequence) =>
        new(MqttStateChangeKind.RemoveDelivery, clientId, null, sequence);
}
