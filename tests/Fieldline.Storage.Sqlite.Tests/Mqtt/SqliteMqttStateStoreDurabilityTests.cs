using System.Text;
using Fieldline.Mqtt.Persistence;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using static Fieldline.Storage.Sqlite.Tests.Mqtt.MqttStoreFixture;

namespace Fieldline.Storage.Sqlite.Tests.Mqtt;

public sealed class SqliteMqttStateStoreDurabilityTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly MqttStoreFixture fixture = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => fixture.DisposeAsync().AsTask();

    [Fact]
    public void WhenDurable_is_complete_when_nothing_was_appended()
    {
        var store = fixture.Open();

        Assert.True(store.WhenDurable().IsCompletedSuccessfully, "expected a completed task from a store with nothing pending");
    }

    [Fact]
    public async Task WhenDurable_returns_one_task_per_batch_that_completes_only_after_the_commit()
    {
        var store = fixture.Open();

        // Another connection holds the write lock, so the writer cannot commit until the test lets it.
        await using var blocker = fixture.OpenRaw(readOnly: false);
        using (var begin = blocker.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE";
            begin.ExecuteNonQuery();
        }

        store.PutSession(Session("first"));
        var firstBatch = store.WhenDurable();
        Assert.Same(firstBatch, store.WhenDurable());

        store.PutSession(Session("second"));
        var laterBatch = store.WhenDurable();
        Assert.Same(laterBatch, store.WhenDurable());

        // Either "first" is in the batch the writer is stuck on and "second" in the next one, or the writer has not
        // taken the batch yet and both share it. Nothing is committed in either case.
        Assert.False(firstBatch.IsCompleted, "expected no completion while the database is locked");
        Assert.False(laterBatch.IsCompleted, "expected no completion while the database is locked");
        Assert.Equal(0, CountSessions(blocker));

        using (var rollback = blocker.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK";
            rollback.ExecuteNonQuery();
        }

        await firstBatch.WaitAsync(Bound);
        Assert.True(fixture.CountRows("session") >= 1, "expected the first session committed once its task completed");
        await laterBatch.WaitAsync(Bound);
        Assert.Equal(2, fixture.CountRows("session"));

        // The completed task of the last batch is what callers get until the next change.
        Assert.Same(laterBatch, store.WhenDurable());
        store.PutSession(Session("third"));
        var thirdBatch = store.WhenDurable();
        Assert.NotSame(laterBatch, thirdBatch);
        await thirdBatch.WaitAsync(Bound);
        Assert.Equal(3, fixture.CountRows("session"));
    }

    [Fact]
    public async Task A_failed_commit_faults_its_batch_only_and_the_store_writes_later_batches()
    {
        var store = fixture.Open();
        store.PutSession(Session("a"));
        store.PutSession(Session("b"));
        await store.WhenDurable().WaitAsync(Bound);

        // A real SQLite failure in the middle of a change: a trigger refuses deliveries to "a", after the message
        // content was already inserted in the same transaction.
        using (var connection = fixture.OpenRaw(readOnly: false))
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "CREATE TRIGGER refuse BEFORE INSERT ON delivery WHEN NEW.client_id = 'a' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END";
            command.ExecuteNonQuery();
        }

        var message = Message("routed", "to a and later b");
        store.PutDelivery("a", Delivery(1, 7, message));
        var failed = store.WhenDurable();
        var error = await Assert.ThrowsAsync<SqliteException>(() => failed.WaitAsync(Bound));
        Assert.Contains("refused by the test", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, fixture.CountRows("delivery"));

        // With nothing pending, the failed batch is still what a caller is told.
        Assert.Same(failed, store.WhenDurable());
        var logged = Assert.Single(fixture.Log.Entries, e => e.Level == LogLevel.Error);
        Assert.Same(error, logged.Exception);

        // The next batch, with the same message routed to another session, is written whole.
        store.PutDelivery("b", Delivery(1, 7, message));
        store.PutRetained(Message("accepted", "y", retain: true));
        await store.WhenDurable().WaitAsync(Bound);

        var state = await store.LoadAsync(None);
        Assert.Empty(Find(state, "a").Deliveries);
        AssertMessage(message, Assert.Single(Find(state, "b").Deliveries).Message);
        Assert.Equal(["accepted"], state.Retained.Select(m => m.Topic));
        Assert.Equal(1, fixture.CountRows("delivery"));

        store.RemoveDelivery("b", 1);
        await store.WhenDurable().WaitAsync(Bound);
        Assert.Equal(0, fixture.CountRows("delivery"));
    }

    [Fact]
    public async Task A_store_that_was_never_disposed_leaves_everything_WhenDurable_confirmed_to_the_next_open()
    {
        var crashed = fixture.Open();
        var payload = Encoding.UTF8.GetBytes(new string('p', 2000));
        for (var s = 0; s < 20; s++)
        {
            var client = $"client-{s:D2}";
            crashed.PutSession(Session(client));
            crashed.PutSubscription(client, new Fieldline.Mqtt.Persistence.MqttStoredSubscription($"t/{s}/#", 1, false, false, 0, (uint)s));
            for (var d = 1; d <= 50; d++)
            {
                crashed.PutDelivery(client, Delivery(d, (s * 1000) + d, new Fieldline.Mqtt.MqttApplicationMessage(Encoding.UTF8.GetBytes($"t/{s}/{d}"), payload, 1, false)));
            }

            crashed.UpdateDelivery(client, 1, 1, MqttDeliveryState.Sent);
            crashed.RemoveDelivery(client, 50);
            crashed.PutIncomingQos2(client, (ushort)(s + 1));
            crashed.PutRetained(Message($"r/{s}", "retained", retain: true));
        }

        await crashed.WhenDurable().WaitAsync(Bound);

        // No disposal: no drain, no checkpoint; the committed WAL is all there is.
        var restarted = fixture.Open();
        var state = await restarted.LoadAsync(None);

        Assert.Equal(20, state.Sessions.Count);
        Assert.Equal(20, state.Retained.Count);
        foreach (var session in state.Sessions)
        {
            Assert.Single(session.Subscriptions);
            Assert.Equal(Enumerable.Range(1, 49).Select(i => (long)i), session.Deliveries.Select(d => d.Sequence));
            Assert.Equal(MqttDeliveryState.Sent, session.Deliveries[0].State);
            Assert.Single(session.IncomingQos2);
            Assert.True(session.Deliveries[^1].Message.Payload.Span.SequenceEqual(payload), "expected the payload back byte for byte");
        }
    }

    [Fact]
    public async Task Appends_from_several_threads_are_all_loaded_in_each_threads_order()
    {
        var store = fixture.Open();
        const int Threads = 4;
        const int PerThread = 2000;
        var shared = Message("broadcast", "to everyone");
        for (var t = 0; t < Threads; t++)
        {
            store.PutSession(Session($"client-{t}"));
        }

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = Enumerable.Range(0, Threads).Select(t => Task.Run(async () =>
        {
            var client = $"client-{t}";
            await start.Task;
            for (var i = 1; i <= PerThread; i++)
            {
                store.PutDelivery(client, Delivery(i, ((t + 1) * 1_000_000) + i, Message($"{client}/{i}", "p")));
                store.PutDelivery(client, Delivery(PerThread + i, 1, shared));

                // Each thread's own order: the update follows the put, every third delivery is removed again.
                store.UpdateDelivery(client, i, (ushort)i, MqttDeliveryState.Sent);
                if (i % 3 == 0)
                {
                    store.RemoveDelivery(client, i);
                }

                if (i % 100 == 0)
                {
                    await store.WhenDurable().WaitAsync(Bound);
                }
            }
        })).ToArray();
        start.SetResult();
        await Task.WhenAll(workers).WaitAsync(Bound);

        var state = await store.LoadAsync(None);

        Assert.Equal(Threads, state.Sessions.Count);
        foreach (var session in state.Sessions)
        {
            var own = session.Deliveries.Where(d => d.Sequence <= PerThread).ToList();
            Assert.Equal(Enumerable.Range(1, PerThread).Where(i => i % 3 != 0).Select(i => (long)i), own.Select(d => d.Sequence));
            Assert.All(own, d => Assert.True(d.State == MqttDeliveryState.Sent && d.PacketId == d.Sequence, $"expected delivery {d.Sequence} sent with packet id {d.Sequence}, saw {d.State} with {d.PacketId}"));
            Assert.Equal(PerThread, session.Deliveries.Count(d => d.MessageId == 1));
        }

        Assert.Equal(state.Sessions.Sum(s => s.Deliveries.Count), fixture.CountRows("delivery"));
        Assert.Equal(Threads * 2 * PerThread, state.Sessions.Sum(s => s.Deliveries.Count) + (Threads * (PerThread / 3)));
    }

    [Fact]
    public void A_file_that_is_not_an_sqlite_database_is_refused_with_a_clear_error()
    {
        File.WriteAllText(fixture.DatabasePath, string.Concat(Enumerable.Repeat("this is not a database, only text. ", 200)));

        var error = Assert.Throws<InvalidDataException>(() => fixture.Open());

        Assert.Contains(fixture.DatabasePath, error.Message, StringComparison.Ordinal);
        Assert.Contains("not a readable MQTT state database", error.Message, StringComparison.Ordinal);
        Assert.IsType<SqliteException>(error.InnerException);
    }

    [Fact]
    public async Task A_database_with_a_damaged_schema_page_is_refused_with_a_clear_error()
    {
        var store = fixture.Open();
        store.PutRetained(Message("a", "b", retain: true));
        await store.DisposeAsync();

        // Garbage over the first page's b-tree (the schema), after SQLite's 100-byte file header.
        using (var file = new FileStream(fixture.DatabasePath, FileMode.Open, FileAccess.Write))
        {
            file.Position = 100;
            file.Write(Enumerable.Repeat((byte)0xA5, 3000).ToArray());
        }

        var error = Assert.Throws<InvalidDataException>(() => fixture.Open());

        Assert.Contains(fixture.DatabasePath, error.Message, StringComparison.Ordinal);
        Assert.Contains("not a readable MQTT state database", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_sqlite_database_of_something_else_is_not_taken_over()
    {
        using (var connection = new SqliteConnection($"Data Source={fixture.DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE devices(id TEXT PRIMARY KEY)";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<InvalidDataException>(() => fixture.Open());

        Assert.Contains("something else", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, fixture.CountRows("sqlite_master", "type = 'table'"));
    }

    [Fact]
    public async Task A_database_from_a_newer_schema_version_is_refused()
    {
        var store = fixture.Open();
        await store.DisposeAsync();
        using (var connection = fixture.OpenRaw(readOnly: false))
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "UPDATE store_meta SET value = 99 WHERE key = 'schema_version'";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<InvalidDataException>(() => fixture.Open());

        Assert.Contains("version 99", error.Message, StringComparison.Ordinal);
    }

    private static long CountSessions(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM session";
        return (long)command.ExecuteScalar()!;
    }
}
