using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>
/// The broker's durable state (<see cref="IMqttStateStore"/>) in its own SQLite file, written behind by one writer
/// thread in group commits.
/// </summary>
/// <remarks>
/// Durability: SQLite in WAL mode with <c>synchronous=NORMAL</c>, like the telemetry store. What
/// <see cref="WhenDurable"/> confirmed survives a killed process (kill -9, crash); a power loss or kernel crash can
/// lose the last commits. Appends from several threads are allowed; each thread's appends keep their order.
/// Times (a session's disconnection, a message's expiry) are stored to the millisecond. Subscriptions, deliveries
/// and QoS 2 packet ids of a client id without a session record are not loaded (the load logs how many).
/// </remarks>
public sealed partial class SqliteMqttStateStore : IMqttStateStore
{
    // Design note (group commit). An append takes a short lock and adds a struct to the open batch, a list that is
    // reused: it allocates nothing and never touches the disk. One writer thread swaps the open batch for an empty
    // one, applies it in one transaction and commits, then takes whatever accumulated meanwhile; batches grow
    // exactly as much as the disk is slow, with no timers. A batch's TaskCompletionSource is created by the first
    // WhenDurable that needs it (batches nobody waits for cost no task) and is the task every later caller gets
    // until the next change opens a new batch, so waiting allocates nothing per message either. A failed batch
    // faults its task and is logged; it is rolled back whole and the writer goes on with the next one.
    private const int RetainedBatchCapacity = 4096;

    private readonly ILogger logger;
    private readonly MqttStateWriter writer;
    private readonly Task writerLoop;
    private readonly SemaphoreSlim batchAvailable = new(0);

    // Guards everything below: the open batch, the state of the writer and disposal.
    private readonly Lock gate = new();
    private List<MqttStateChange> open = new(256);
    private List<MqttStateChange> spare = new(256);
    private TaskCompletionSource? openCompletion;
    private TaskCompletionSource? writingCompletion;
    private bool writing;
    private bool stopping;

    // The task of the last finished batch: what WhenDurable returns when nothing is pending, so that a caller whose
    // changes were in a batch that just failed still sees the failure.
    private Task lastOutcome = Task.CompletedTask;

    /// <summary>Opens the state database, creating it (and its directory) when missing, and starts the writer.</summary>
    /// <param name="databasePath">The SQLite file, e.g. <c>broker.db</c> in the data directory.</param>
    /// <param name="logger">Log output; none when null.</param>
    /// <exception cref="InvalidDataException">The file is not an SQLite database, is damaged, holds another schema or a newer version.</exception>
    public SqliteMqttStateStore(string databasePath, ILogger<SqliteMqttStateStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        DatabasePath = Path.GetFullPath(databasePath);
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        writer = MqttStateWriter.Open(DatabasePath, this.logger);
        writerLoop = Task.Factory.StartNew(RunWriter, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The absolute path of the database file.</summary>
    public string DatabasePath { get; }

    /// <inheritdoc />
    public Task WhenDurable()
    {
        lock (gate)
        {
            if (open.Count > 0)
            {
                return (openCompletion ??= NewCompletion()).Task;
            }

            if (writing)
            {
                return (writingCompletion ??= NewCompletion()).Task;
            }

            return lastOutcome;
        }
    }

    /// <inheritdoc />
    public void PutSession(MqttStoredSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(session.ClientId);
        Enqueue(new MqttStateChange(MqttStateChangeKind.PutSession, session.ClientId, session));
    }

    /// <inheritdoc />
    public void RemoveSession(string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        Enqueue(new MqttStateChange(MqttStateChangeKind.RemoveSession, clientId, null));
    }

    /// <inheritdoc />
    public void PutSubscription(string clientId, MqttStoredSubscription subscription)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        ArgumentNullException.ThrowIfNull(subscription);
        ArgumentNullException.ThrowIfNull(subscription.Filter);
        Enqueue(new MqttStateChange(MqttStateChangeKind.PutSubscription, clientId, subscription));
    }

    /// <inheritdoc />
    public void RemoveSubscription(string clientId, string filter)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        ArgumentNullException.ThrowIfNull(filter);
        Enqueue(new MqttStateChange(MqttStateChangeKind.RemoveSubscription, clientId, filter));
    }

    /// <inheritdoc />
    public void PutDelivery(string clientId, MqttStoredDelivery delivery)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentNullException.ThrowIfNull(delivery.Message);
        CheckState(delivery.State);
        Enqueue(new MqttStateChange(MqttStateChangeKind.PutDelivery, clientId, delivery, delivery.Sequence, delivery.PacketId, delivery.State));
    }

    /// <inheritdoc />
    public void UpdateDelivery(string clientId, long sequence, ushort packetId, MqttDeliveryState state)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        CheckState(state);
        Enqueue(new MqttStateChange(MqttStateChangeKind.UpdateDelivery, clientId, null, sequence, packetId, state));
    }

    /// <inheritdoc />
    public void RemoveDelivery(string clientId, long sequence)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        Enqueue(new MqttStateChange(MqttStateChangeKind.RemoveDelivery, clientId, null, sequence));
    }

    /// <inheritdoc />
    public void PutIncomingQos2(string clientId, ushort packetId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        Enqueue(new MqttStateChange(MqttStateChangeKind.PutIncomingQos2, clientId, null, packetId: packetId));
    }

    /// <inheritdoc />
    public void RemoveIncomingQos2(string clientId, ushort packetId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        Enqueue(new MqttStateChange(MqttStateChangeKind.RemoveIncomingQos2, clientId, null, packetId: packetId));
    }

    /// <inheritdoc />
    public void PutRetained(MqttApplicationMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Enqueue(new MqttStateChange(MqttStateChangeKind.PutRetained, null, message));
    }

    /// <inheritdoc />
    public void RemoveRetained(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        Enqueue(new MqttStateChange(MqttStateChangeKind.RemoveRetained, null, topic));
    }

    /// <summary>Stops accepting changes, writes and commits everything already appended, and closes the database.</summary>
    public async ValueTask DisposeAsync()
    {
        bool wake;
        lock (gate)
        {
            wake = !stopping;
            stopping = true;
        }

        // One extra wake-up: the writer exits when it finds nothing open after stopping.
        if (wake)
        {
            batchAvailable.Release();
        }

        await writerLoop.ConfigureAwait(false);
    }

    private static TaskCompletionSource NewCompletion() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static void CheckState(MqttDeliveryState state)
    {
        if (state > MqttDeliveryState.Released)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, "Not a delivery state.");
        }
    }

    private void Enqueue(in MqttStateChange change)
    {
        bool first;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(stopping, this);
            open.Add(change);
            first = open.Count == 1;
        }

        // One wake-up per batch: the writer takes the whole open batch when it wakes.
        if (first)
        {
            batchAvailable.Release();
        }
    }

    private void RunWriter()
    {
        try
        {
            while (true)
            {
                batchAvailable.Wait();
                List<MqttStateChange> batch;
                lock (gate)
                {
                    if (open.Count == 0)
                    {
                        if (stopping)
                        {
                            return;
                        }

                        continue;
                    }

                    batch = open;
                    open = spare;
                    writingCompletion = openCompletion;
                    openCompletion = null;
                    writing = true;
                }

                Exception? failure = null;
                try
                {
                    writer.Apply(batch);
                }
                catch (Exception ex)
                {
                    failure = ex;
                    logger.CommitFailed(ex, batch.Count);
                }

                // Drops the references to the messages, and a burst's oversized buffer.
                batch.Clear();
                if (batch.Capacity > RetainedBatchCapacity)
                {
                    batch.Capacity = RetainedBatchCapacity;
                }

                TaskCompletionSource? completion;
                lock (gate)
                {
                    spare = batch;
                    writing = false;
                    completion = writingCompletion;
                    writingCompletion = null;
                    lastOutcome = completion?.Task ?? (failure is null ? Task.CompletedTask : Task.FromException(failure));
                }

                if (failure is null)
                {
                    completion?.SetResult();
                }
                else
                {
                    completion?.SetException(failure);
                }
            }
        }
        finally
        {
            writer.Dispose();
            batchAvailable.Dispose();
        }
    }
}
