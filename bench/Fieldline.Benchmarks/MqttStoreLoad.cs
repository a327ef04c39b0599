using System.Diagnostics;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using Fieldline.Storage.Sqlite.Mqtt;
using Microsoft.Data.Sqlite;

namespace Fieldline.Benchmarks;

/// <summary>
/// Change throughput of <see cref="SqliteMqttStateStore"/> from concurrent appenders, each its own persistent
/// session receiving QoS 1 messages (one message to one session, a 100-byte payload):
/// <list type="bullet">
/// <item>put+wait: PutDelivery, then await WhenDurable (a publisher's PUBACK waiting for the queued message);</item>
/// <item>pair+wait: PutDelivery, await WhenDurable, RemoveDelivery (the subscriber's PUBACK, not waited for);</item>
/// <item>pair: PutDelivery and RemoveDelivery without waiting (what the writer sustains), one WhenDurable at the end.</item>
/// </list>
/// Also the bytes a PutDelivery call allocates on the caller's thread (the delivery record itself excluded).
/// Run: <c>dotnet run -c Release --project bench/Fieldline.Benchmarks -- mqtt-store-load [operations per appender] [appenders]</c>.
/// </summary>
internal static class MqttStoreLoad
{
    private const int PayloadBytes = 100;

    public static async Task<int> RunAsync(string[] args)
    {
        var perAppender = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50_000;
        var appenders = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 4;
        var directory = Path.Combine(Path.GetTempPath(), "fieldline-mqtt-store-load-" + Guid.NewGuid().ToString("N"));
        try
        {
            Console.WriteLine($"{appenders} appenders x {perAppender:N0} operations, {PayloadBytes}-byte payloads, synchronous=NORMAL");
            Func<SqliteMqttStateStore, string, long, long, MqttApplicationMessage, Task> putAndWait = async (store, client, sequence, messageId, message) =>
            {
                store.PutDelivery(client, Delivery(sequence, messageId, message));
                await store.WhenDurable();
            };

            // JIT and SQLite's first pages, not reported.
            await MeasureAsync(Path.Combine(directory, "warm-up.db"), null, appenders, Math.Max(1, perAppender / 10), changesPerOperation: 1, putAndWait);
            await MeasureAsync(Path.Combine(directory, "put-wait.db"), "put+wait", appenders, perAppender, changesPerOperation: 1, putAndWait);
            await MeasureAsync(Path.Combine(directory, "pair-wait.db"), "pair+wait", appenders, perAppender, changesPerOperation: 2, async (store, client, sequence, messageId, message) =>
            {
                store.PutDelivery(client, Delivery(sequence, messageId, message));
                await store.WhenDurable();
                store.RemoveDelivery(client, sequence);
            });
            await MeasureAsync(Path.Combine(directory, "pair.db"), "pair", appenders, perAppender, changesPerOperation: 2, (store, client, sequence, messageId, message) =>
            {
                store.PutDelivery(client, Delivery(sequence, messageId, message));
                store.RemoveDelivery(client, sequence);
                return Task.CompletedTask;
            });
            await MeasureAllocationAsync(Path.Combine(directory, "alloc.db"));
            return 0;
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    private static MqttStoredDelivery Delivery(long sequence, long messageId, MqttApplicationMessage message) =>
        new(sequence, messageId, message, 1, false, 0, MqttDeliveryState.Queued, []);

    private static async Task MeasureAsync(string path, string? name, int appenders, int perAppender, int changesPerOperation, Func<SqliteMqttStateStore, string, long, long, MqttApplicationMessage, Task> operation)
    {
        var store = new SqliteMqttStateStore(path);
        var payload = new byte[PayloadBytes];
        Random.Shared.NextBytes(payload);
        for (var a = 0; a < appenders; a++)
        {
            store.PutSession(new MqttStoredSession($"client-{a}", "bench", uint.MaxValue, null));
        }

        await store.WhenDurable();
        var latencies = new long[appenders][];
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            var client = $"client-{a}";
            var times = latencies[a] = new long[perAppender];
            await start.Task;
            for (var i = 0; i < perAppender; i++)
            {
                var message = new MqttApplicationMessage("bench/topic"u8.ToArray(), payload, 1, false);
                var started = Stopwatch.GetTimestamp();
                await operation(store, client, i + 1, ((long)a * perAppender) + i + 1, message);
                times[i] = Stopwatch.GetTimestamp() - started;
            }
        })).ToArray();

        var gcBefore = GC.CollectionCount(0);
        var begun = Stopwatch.GetTimestamp();
        start.SetResult();
        await Task.WhenAll(workers);
        await store.WhenDurable();
        var elapsed = Stopwatch.GetElapsedTime(begun);
        var gcs = GC.CollectionCount(0) - gcBefore;
        await store.DisposeAsync();

        if (name is null)
        {
            return;
        }

        var changes = (long)appenders * perAppender * changesPerOperation;
        var sorted = latencies.SelectMany(l => l).Order().ToArray();
        Console.WriteLine(
            $"{name,-10} {changes:N0} changes in {elapsed.TotalSeconds:F2} s = {changes / elapsed.TotalSeconds,9:N0} changes/s, " +
            $"{(long)appenders * perAppender / elapsed.TotalSeconds,9:N0} operations/s; operation p50 {Micros(sorted[sorted.Length / 2]):F0} µs, " +
            $"p99 {Micros(sorted[(int)(sorted.Length * 0.99)]):F0} µs; gen0 GCs {gcs}; file {new FileInfo(path).Length:N0} bytes");
    }

    private static async Task MeasureAllocationAsync(string path)
    {
        const int Rounds = 20;
        const int Calls = 1000;
        var store = new SqliteMqttStateStore(path);
        var message = new MqttApplicationMessage("bench/topic"u8.ToArray(), new byte[PayloadBytes], 1, false);
        var deliveries = Enumerable.Range(1, Rounds * Calls).Select(i => Delivery(i, i, message)).ToArray();
        long putAllocated = 0;
        long waitAllocated = 0;

        // Rounds of a thousand appends between commits, as under load; the first two rounds grow the two reused lists.
        for (var round = -2; round < Rounds; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < Calls; i++)
            {
                store.PutDelivery("client", deliveries[(Math.Max(round, 0) * Calls) + i]);
            }

            var afterPut = GC.GetAllocatedBytesForCurrentThread();
            var durable = store.WhenDurable();
            for (var i = 1; i < Calls; i++)
            {
                _ = store.WhenDurable();
            }

            var afterWait = GC.GetAllocatedBytesForCurrentThread();
            if (round >= 0)
            {
                putAllocated += afterPut - before;
                waitAllocated += afterWait - afterPut;
            }

            await durable;
        }

        await store.DisposeAsync();
        Console.WriteLine($"caller allocation: {(double)putAllocated / (Rounds * Calls):F1} bytes per PutDelivery; {(double)waitAllocated / (Rounds * Calls):F1} bytes per WhenDurable (one task per batch)");
    }

    private static double Micros(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;
}
