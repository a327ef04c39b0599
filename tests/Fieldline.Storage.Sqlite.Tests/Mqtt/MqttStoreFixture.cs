using System.Collections.Concurrent;
using System.Text;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using Fieldline.Storage.Sqlite.Mqtt;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Fieldline.Storage.Sqlite.Tests.Mqtt;

/// <summary>A temporary directory for MQTT state databases; every store opened through it is disposed with the test.</summary>
public sealed class MqttStoreFixture : IAsyncDisposable
{
    private readonly List<SqliteMqttStateStore> opened = [];

    public MqttStoreFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fieldline-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string DatabasePath => Path.Combine(Directory, "broker.db");

    public RecordingLogger Log { get; } = new();

    public SqliteMqttStateStore Open(string? path = null)
    {
        var store = new SqliteMqttStateStore(path ?? DatabasePath, Log);
        opened.Add(store);
        return store;
    }

    /// <summary>Disposes <paramref name="store"/> and opens the file again, as a restarted broker would.</summary>
    public async Task<SqliteMqttStateStore> ReopenAsync(SqliteMqttStateStore store)
    {
        await store.DisposeAsync();
        return Open();
    }

    public SqliteConnection OpenRaw(bool readOnly = true)
    {
        var connection = new SqliteConnection($"Data Source={DatabasePath};Mode={(readOnly ? "ReadOnly" : "ReadWrite")};Pooling=False");
        connection.Open();
        return connection;
    }

    public long CountRows(string table, string where = "1")
    {
        using var connection = OpenRaw();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table} WHERE {where}";
        return (long)command.ExecuteScalar()!;
    }

    public static MqttApplicationMessage Message(string topic, string payload, byte qos = 1, bool retain = false, byte[]? properties = null, DateTimeOffset? expiresAt = null) =>
        new(Encoding.UTF8.GetBytes(topic), Encoding.UTF8.GetBytes(payload), qos, retain, properties ?? default(ReadOnlyMemory<byte>))
        {
            ExpiresAt = expiresAt,
        };

    public static MqttStoredDelivery Delivery(long sequence, long messageId, MqttApplicationMessage message, byte qos = 1, MqttDeliveryState state = MqttDeliveryState.Queued, ushort packetId = 0, bool retain = false, uint[]? subscriptionIds = null) =>
        new(sequence, messageId, message, qos, retain, packetId, state, subscriptionIds ?? []);

    public static MqttStoredSession Session(string clientId, string? owner = "user", uint expirySeconds = 3600, DateTimeOffset? disconnectedAt = null) =>
        new(clientId, owner, expirySeconds, disconnectedAt);

    public static MqttStoredSessionState Find(MqttStoredState state, string clientId) =>
        state.Sessions.SingleOrDefault(s => s.Session.ClientId == clientId)
        ?? throw new Xunit.Sdk.XunitException($"expected a stored session '{clientId}', saw [{string.Join(", ", state.Sessions.Select(s => s.Session.ClientId))}]");

    public static void AssertMessage(MqttApplicationMessage expected, MqttApplicationMessage actual)
    {
        Assert.Equal(expected.Topic, actual.Topic);
        Assert.True(expected.Payload.Span.SequenceEqual(actual.Payload.Span), $"payload of {expected.Topic}: expected {expected.Payload.Length} bytes, saw {actual.Payload.Length} different or differing bytes");
        Assert.Equal(expected.QualityOfService, actual.QualityOfService);
        Assert.Equal(expected.Retain, actual.Retain);
        Assert.Equal(expected.Properties.ToArray(), actual.Properties.ToArray());
        Assert.Equal(expected.ExpiresAt, actual.ExpiresAt);
    }

    public static void AssertDelivery(MqttStoredDelivery expected, MqttStoredDelivery actual)
    {
        Assert.Equal(expected.Sequence, actual.Sequence);
        Assert.Equal(expected.MessageId, actual.MessageId);
        Assert.Equal(expected.QualityOfService, actual.QualityOfService);
        Assert.Equal(expected.Retain, actual.Retain);
        Assert.Equal(expected.PacketId, actual.PacketId);
        Assert.Equal(expected.State, actual.State);
        Assert.Equal(expected.SubscriptionIdentifiers, actual.SubscriptionIdentifiers);
        AssertMessage(expected.Message, actual.Message);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var store in opened)
        {
            await store.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory must not fail the test.
        }
    }
}

/// <summary>Records what the store logs, so that a test can assert on it.</summary>
public sealed class RecordingLogger : ILogger<SqliteMqttStateStore>
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> entries = new();

    public IReadOnlyCollection<(LogLevel Level, string Message, Exception? Exception)> Entries => [.. entries];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        entries.Enqueue((logLevel, formatter(state, exception), exception));
}
