using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using static Fieldline.Storage.Sqlite.Tests.Mqtt.MqttStoreFixture;

namespace Fieldline.Storage.Sqlite.Tests.Mqtt;

public sealed class SqliteMqttStateStoreTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly MqttStoreFixture fixture = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => fixture.DisposeAsync().AsTask();

    [Fact]
    public async Task A_new_file_loads_as_an_empty_state_with_its_schema_version()
    {
        var store = fixture.Open();

        var state = await store.LoadAsync(None);

        Assert.Empty(state.Sessions);
        Assert.Empty(state.Retained);
        Assert.Equal(1, fixture.CountRows("store_meta", "key = 'schema_version' AND value = 2"));
    }

    [Fact]
    public async Task Every_kind_of_change_round_trips_through_a_restart()
    {
        var store = fixture.Open();
        var disconnectedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_732_550_000_123);
        var expiresAt = DateTimeOffset.FromUnixTimeMilliseconds(1_732_560_000_456);
        byte[] properties = [0x03, 0x00, 0x04, (byte)'j', (byte)'s', (byte)'o', (byte)'n'];

        store.PutSession(Session("alpha", owner: "alice", expirySeconds: uint.MaxValue));
        store.PutSession(Session("beta", owner: null, expirySeconds: 60, disconnectedAt: disconnectedAt));
        store.PutSession(Session("gamma"));
        store.PutSession(Session("gamma", owner: "carol", expirySeconds: 7, disconnectedAt: disconnectedAt)); // an update

        var plain = new MqttStoredSubscription("sensors/+/temp", 1, false, false, 0, 0);
        var shared = new MqttStoredSubscription("$share/workers/jobs/#", 2, true, true, 2, 268_435_455);
        store.PutSubscription("alpha", plain);
        store.PutSubscription("alpha", shared);
        store.PutSubscription("alpha", new MqttStoredSubscription("gone/#", 0, false, false, 1, 5));
        store.RemoveSubscription("alpha", "gone/#");
        store.PutSubscription("beta", plain with { MaximumQoS = 0 });
        store.PutSubscription("beta", plain); // replaces the QoS 0 one

        var rich = Message("sensors/7/temp", "21.5", qos: 2, retain: true, properties: properties, expiresAt: expiresAt);
        var bare = Message("jobs/1", "", qos: 1);
        var deliveries = new[]
        {
            Delivery(1, 100, rich, qos: 2, state: MqttDeliveryState.Sent, packetId: 17, retain: true, subscriptionIds: [1, 268_435_455]),
            Delivery(2, 101, bare, qos: 1),
            Delivery(3, 102, Message("jobs/2", "x"), qos: 2, state: MqttDeliveryState.Released, packetId: 65_535),
        };
        foreach (var delivery in deliveries)
        {
            store.PutDelivery("alpha", delivery);
        }

        store.PutIncomingQos2("alpha", 1);
        store.PutIncomingQos2("alpha", 65_535);
        store.PutIncomingQos2("alpha", 300);
        store.RemoveIncomingQos2("alpha", 300);
        store.PutIncomingQos2("beta", 9);

        var retainedRich = Message("status/a", "online", qos: 1, retain: true, properties: properties, expiresAt: expiresAt);
        store.PutRetained(retainedRich);
        store.PutRetained(Message("status/b", "offline", qos: 0, retain: true));
        store.RemoveRetained("status/b");

        store = await fixture.ReopenAsync(store);
        var state = await store.LoadAsync(None);

        Assert.Equal(["alpha", "beta", "gamma"], state.Sessions.Select(s => s.Session.ClientId));
        var alpha = Find(state, "alpha");
        Assert.Equal(Session("alpha", owner: "alice", expirySeconds: uint.MaxValue), alpha.Session);
        Assert.Equal([shared, plain], alpha.Subscriptions);
        Assert.Equal(deliveries.Length, alpha.Deliveries.Count);
        for (var i = 0; i < deliveries.Length; i++)
        {
            AssertDelivery(deliveries[i], alpha.Deliveries[i]);
        }

        Assert.Equal([(ushort)1, (ushort)65_535], alpha.IncomingQos2);

        var beta = Find(state, "beta");
        Assert.Equal(Session("beta", owner: null, expirySeconds: 60, disconnectedAt: disconnectedAt), beta.Session);
        Assert.Equal([plain], beta.Subscriptions);
        Assert.Empty(beta.Deliveries);
        Assert.Equal([(ushort)9], beta.IncomingQos2);

        var gamma = Find(state, "gamma");
        Assert.Equal(Session("gamma", owner: "carol", expirySeconds: 7, disconnectedAt: disconnectedAt), gamma.Session);
        Assert.Empty(gamma.Subscriptions);

        var retained = Assert.Single(state.Retained);
        AssertMessage(retainedRich, retained);
    }

    [Fact]
    public async Task Deliveries_load_in_sequence_order_within_each_session()
    {
        var store = fixture.Open();
        store.PutSession(Session("a"));
        store.PutSession(Session("b"));
        long[] appendedOrder = [5, 3, 9, 1, 7, 2, 8];
        foreach (var sequence in appendedOrder)
        {
            store.PutDelivery("a", Delivery(sequence, 1000 + sequence, Message($"t/{sequence}", "p")));
            store.PutDelivery("b", Delivery(100 - sequence, 2000 + sequence, Message($"u/{sequence}", "q")));
        }

        store.RemoveDelivery("a", 9);
        store.RemoveDelivery("b", 99);

        var state = await store.LoadAsync(None);

        Assert.Equal([1L, 2, 3, 5, 7, 8], Find(state, "a").Deliveries.Select(d => d.Sequence));
        Assert.Equal(["t/1", "t/2", "t/3", "t/5", "t/7", "t/8"], Find(state, "a").Deliveries.Select(d => d.Message.Topic));
        Assert.Equal([91L, 92, 93, 95, 97, 98], Find(state, "b").Deliveries.Select(d => d.Sequence));
    }

    [Fact]
    public async Task Content_routed_to_several_sessions_loads_as_one_message_and_goes_with_each_delivery()
    {
        var store = fixture.Open();
        var message = Message("news/today", new string('n', 10_000));
        foreach (var client in new[] { "a", "b", "c" })
        {
            store.PutSession(Session(client));
            store.PutDelivery(client, Delivery(1, 42, message));
        }

        store.PutDelivery("a", Delivery(2, 43, Message("news/other", "o")));
        await store.WhenDurable();
        Assert.Equal(4, fixture.CountRows("delivery"));

        // After a restart the three deliveries share one message instance again.
        store = await fixture.ReopenAsync(store);
        var state = await store.LoadAsync(None);
        var loaded = state.Sessions.Select(s => s.Deliveries.Single(d => d.MessageId == 42).Message).ToList();
        Assert.Equal(3, loaded.Count);
        Assert.All(loaded, m => Assert.Same(loaded[0], m));
        AssertMessage(message, loaded[0]);

        // Removing one delivery leaves the others' content whole.
        store.RemoveDelivery("a", 1);
        store.RemoveDelivery("b", 1);
        await store.WhenDurable();
        Assert.Equal(1, fixture.CountRows("delivery", "message_id = 42"));
        store = await fixture.ReopenAsync(store);
        state = await store.LoadAsync(None);
        AssertMessage(message, Find(state, "c").Deliveries.Single().Message);

        store.RemoveDelivery("c", 1);
        store.RemoveDelivery("a", 2);
        store.RemoveDelivery("a", 2); // twice, or of a delivery never stored: nothing to do
        store.RemoveDelivery("nobody", 1);
        await store.WhenDurable();
        Assert.Equal(0, fixture.CountRows("delivery"));
    }

    [Fact]
    public async Task A_delivery_put_again_replaces_its_row_and_a_removed_session_can_start_over_at_the_same_sequence()
    {
        var store = fixture.Open();
        store.PutSession(Session("a"));
        store.PutDelivery("a", Delivery(1, 1, Message("t/1", "first")));
        await store.WhenDurable();
        store.PutDelivery("a", Delivery(1, 2, Message("t/1", "second")));
        await store.WhenDurable();
        Assert.Equal(1, fixture.CountRows("delivery"));

        store.RemoveSession("a");
        store.PutSession(Session("a"));
        store.PutDelivery("a", Delivery(1, 3, Message("t/1", "third")));
        store.UpdateDelivery("a", 1, 4, MqttDeliveryState.Sent);
        await store.WhenDurable();

        // The row index is rebuilt from the file at open: updates and removals after a restart find their rows.
        store = await fixture.ReopenAsync(store);
        var state = await store.LoadAsync(None);
        AssertDelivery(Delivery(1, 3, Message("t/1", "third"), state: MqttDeliveryState.Sent, packetId: 4), Find(state, "a").Deliveries.Single());
        store.UpdateDelivery("a", 1, 4, MqttDeliveryState.Released);
        await store.WhenDurable();
        Assert.Equal(1, fixture.CountRows("delivery", "state = 2"));
        store.RemoveDelivery("a", 1);
        await store.WhenDurable();
        Assert.Equal(0, fixture.CountRows("delivery"));
    }

    [Fact]
    public async Task A_version_1_database_is_migrated_with_its_deliveries_and_their_content()
    {
        // The schema of version 1: content in `message`, shared by the deliveries that refer to it.
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={fixture.DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE store_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO store_meta VALUES ('schema_version', 1);
                CREATE TABLE session(client_id TEXT PRIMARY KEY, owner TEXT, expiry_seconds INTEGER NOT NULL, disconnected_at INTEGER) WITHOUT ROWID;
                CREATE TABLE subscription(client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, no_local INTEGER NOT NULL,
                    retain_as_published INTEGER NOT NULL, retain_handling INTEGER NOT NULL, subscription_id INTEGER NOT NULL, PRIMARY KEY(client_id, filter)) WITHOUT ROWID;
                CREATE TABLE message(id INTEGER PRIMARY KEY, topic BLOB NOT NULL, payload BLOB, qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties BLOB, expires_at INTEGER);
                CREATE TABLE delivery(client_id TEXT NOT NULL, sequence INTEGER NOT NULL, message_id INTEGER NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
                    packet_id INTEGER NOT NULL, state INTEGER NOT NULL, subscription_ids BLOB, PRIMARY KEY(client_id, sequence)) WITHOUT ROWID;
                CREATE TABLE incoming_qos2(client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, PRIMARY KEY(client_id, packet_id)) WITHOUT ROWID;
                CREATE TABLE retained(topic TEXT PRIMARY KEY, payload BLOB, qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties BLOB, expires_at INTEGER);
                INSERT INTO session VALUES ('a', 'user', 3600, NULL), ('b', 'user', 3600, NULL);
                INSERT INTO message VALUES (7, CAST('t/1' AS BLOB), CAST('hello' AS BLOB), 2, 0, NULL, 4102444800000);
                INSERT INTO delivery VALUES ('a', 1, 7, 1, 0, 0, 0, NULL), ('b', 3, 7, 2, 1, 9, 1, X'05000000');
                """;
            command.ExecuteNonQuery();
        }

        var store = fixture.Open();
        var state = await store.LoadAsync(None);

        var expected = Message("t/1", "hello", qos: 2, expiresAt: DateTimeOffset.FromUnixTimeMilliseconds(4102444800000));
        AssertDelivery(Delivery(1, 7, expected), Find(state, "a").Deliveries.Single());
        AssertDelivery(Delivery(3, 7, expected, qos: 2, state: MqttDeliveryState.Sent, packetId: 9, retain: true, subscriptionIds: [5]), Find(state, "b").Deliveries.Single());
        Assert.Equal(1, fixture.CountRows("store_meta", "key = 'schema_version' AND value = 2"));
        Assert.Equal(0, fixture.CountRows("sqlite_master", "name = 'message'"));
    }

    [Fact]
    public async Task Removing_a_session_removes_its_subscriptions_deliveries_and_qos2_ids()
    {
        var store = fixture.Open();
        var shared = Message("shared/topic", "both");
        foreach (var client in new[] { "leaving", "staying" })
        {
            store.PutSession(Session(client));
            store.PutSubscription(client, new MqttStoredSubscription("shared/#", 1, false, false, 0, 0));
            store.PutDelivery(client, Delivery(1, 1, shared));
            store.PutIncomingQos2(client, 5);
        }

        store.PutDelivery("leaving", Delivery(2, 2, Message("only/leaving", "mine")));
        store.PutDelivery("leaving", Delivery(3, 3, Message("only/leaving", "mine too")));
        await store.WhenDurable();

        store.RemoveSession("leaving");
        await store.WhenDurable();

        foreach (var table in new[] { "session", "subscription", "delivery", "incoming_qos2" })
        {
            Assert.True(fixture.CountRows(table, "client_id = 'leaving'") == 0, $"expected no '{table}' rows of the removed session");
            Assert.True(fixture.CountRows(table, "client_id = 'staying'") > 0, $"expected the other session's '{table}' rows to stay");
        }

        var state = await store.LoadAsync(None);
        var staying = Assert.Single(state.Sessions);
        Assert.Equal("staying", staying.Session.ClientId);
        AssertDelivery(Delivery(1, 1, shared), Assert.Single(staying.Deliveries));

        store.RemoveSession("staying");
        await store.WhenDurable();
        Assert.Equal(0, fixture.CountRows("delivery"));
    }

    [Fact]
    public async Task UpdateDelivery_records_the_packet_id_and_state_of_a_delivery()
    {
        var store = fixture.Open();
        store.PutSession(Session("c"));
        store.PutDelivery("c", Delivery(1, 1, Message("q/2", "exactly once"), qos: 2));
        store.PutDelivery("c", Delivery(2, 2, Message("q/1", "at least once"), qos: 1));

        async Task<(ushort PacketId, MqttDeliveryState State)[]> LoadDeliveriesAsync() =>
            [.. Find(await store.LoadAsync(None), "c").Deliveries.Select(d => (d.PacketId, d.State))];

        Assert.Equal([((ushort)0, MqttDeliveryState.Queued), ((ushort)0, MqttDeliveryState.Queued)], await LoadDeliveriesAsync());

        store.UpdateDelivery("c", 1, 4242, MqttDeliveryState.Sent);
        store.UpdateDelivery("c", 2, 4243, MqttDeliveryState.Sent);
        Assert.Equal([((ushort)4242, MqttDeliveryState.Sent), ((ushort)4243, MqttDeliveryState.Sent)], await LoadDeliveriesAsync());

        store.UpdateDelivery("c", 1, 4242, MqttDeliveryState.Released);
        store.UpdateDelivery("c", 99, 1, MqttDeliveryState.Sent); // a delivery that is not stored: nothing to do
        Assert.Equal([((ushort)4242, MqttDeliveryState.Released), ((ushort)4243, MqttDeliveryState.Sent)], await LoadDeliveriesAsync());

        store = await fixture.ReopenAsync(store);
        Assert.Equal([((ushort)4242, MqttDeliveryState.Released), ((ushort)4243, MqttDeliveryState.Sent)], await LoadDeliveriesAsync());

        Assert.Throws<ArgumentOutOfRangeException>(() => store.UpdateDelivery("c", 1, 1, (MqttDeliveryState)3));
    }

    [Fact]
    public async Task A_retained_message_is_replaced_by_the_next_on_its_topic_and_removed_by_topic()
    {
        var store = fixture.Open();
        store.PutRetained(Message("home/light", "on", qos: 1, retain: true));
        store.PutRetained(Message("home/door", "closed", qos: 0, retain: true));
        var replacement = Message("home/light", "off", qos: 2, retain: true, properties: [0x01, 0x01], expiresAt: DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));
        store.PutRetained(replacement);

        var state = await store.LoadAsync(None);
        Assert.Equal(["home/door", "home/light"], state.Retained.Select(m => m.Topic));
        AssertMessage(replacement, state.Retained[1]);
        Assert.Equal(2, fixture.CountRows("retained"));

        store.RemoveRetained("home/light");
        store.RemoveRetained("home/never");
        state = await store.LoadAsync(None);
        Assert.Equal(["home/door"], state.Retained.Select(m => m.Topic));

        store.RemoveRetained("home/door");
        store = await fixture.ReopenAsync(store);
        Assert.Empty((await store.LoadAsync(None)).Retained);
    }

    [Fact]
    public async Task Payloads_of_the_maximum_packet_size_and_empty_ones_round_trip()
    {
        var store = fixture.Open();
        var big = new byte[1024 * 1024];
        new Random(3).NextBytes(big);
        var bigMessage = new MqttApplicationMessage("large/blob"u8.ToArray(), big, 1, false, new byte[64 * 1024]);

        // A payload that is a slice of a larger buffer is stored as the slice.
        var window = new byte[1000];
        new Random(4).NextBytes(window);
        var sliced = new MqttApplicationMessage("sliced"u8.ToArray(), window.AsMemory(100, 500), 2, true);
        var empty = new MqttApplicationMessage("empty"u8.ToArray(), ReadOnlyMemory<byte>.Empty, 1, false);

        store.PutSession(Session("s"));
        store.PutDelivery("s", Delivery(1, 1, bigMessage));
        store.PutDelivery("s", Delivery(2, 2, sliced));
        store.PutDelivery("s", Delivery(3, 3, empty));
        store.PutRetained(new MqttApplicationMessage("large/retained"u8.ToArray(), big, 1, true));
        store.PutRetained(new MqttApplicationMessage("empty/retained"u8.ToArray(), ReadOnlyMemory<byte>.Empty, 0, true));

        store = await fixture.ReopenAsync(store);
        var state = await store.LoadAsync(None);

        var deliveries = Find(state, "s").Deliveries;
        AssertMessage(bigMessage, deliveries[0].Message);
        AssertMessage(sliced, deliveries[1].Message);
        Assert.Equal(500, deliveries[1].Message.Payload.Length);
        AssertMessage(empty, deliveries[2].Message);
        Assert.Equal(["empty/retained", "large/retained"], state.Retained.Select(m => m.Topic));
        Assert.True(state.Retained[0].Payload.IsEmpty, "expected the empty retained payload to load empty");
        Assert.True(state.Retained[1].Payload.Span.SequenceEqual(big), "expected the 1 MiB retained payload back byte for byte");
    }

    [Fact]
    public async Task Disposal_writes_what_was_queued_and_later_appends_are_refused()
    {
        var store = fixture.Open();
        store.PutSession(Session("s"));
        for (var i = 1; i <= 5000; i++)
        {
            store.PutDelivery("s", Delivery(i, i, Message($"t/{i}", "p")));
        }

        await store.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => store.PutRetained(Message("late", "x")));
        Assert.Throws<ObjectDisposedException>(() => store.RemoveSession("s"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.LoadAsync(None));
        await store.DisposeAsync(); // a second disposal is harmless
        Assert.False(File.Exists(fixture.DatabasePath + "-wal") && new FileInfo(fixture.DatabasePath + "-wal").Length > 0, "expected the WAL folded into the database at disposal");

        var reopened = fixture.Open();
        Assert.Equal(5000, Find(await reopened.LoadAsync(None), "s").Deliveries.Count);
    }
}
