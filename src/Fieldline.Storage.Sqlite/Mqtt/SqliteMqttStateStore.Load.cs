using System.Buffers.Binary;
using System.Diagnostics;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>Reading the stored state back at start.</summary>
public sealed partial class SqliteMqttStateStore
{
    /// <inheritdoc />
    /// <remarks>Changes appended before the call are written first, so the result includes them (unless writing them failed).</remarks>
    public async Task<MqttStoredState> LoadAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(stopping, this);
        }

        await WhenDurable().WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        cancellationToken.ThrowIfCancellationRequested();
        return await Task.Run(() => Load(cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private MqttStoredState Load(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var connection = new SqliteConnection(MqttStateSchema.ReaderConnectionString(DatabasePath));
        connection.Open();

        // One read transaction: every table is read from the same snapshot even if the writer commits meanwhile.
        using var transaction = connection.BeginTransaction(deferred: true);
        var sessions = new Dictionary<string, SessionRows>(StringComparer.Ordinal);
        var orphans = 0;
        using (var command = Command(connection, transaction, "SELECT client_id, owner, expiry_seconds, disconnected_at FROM session ORDER BY client_id"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                var session = new MqttStoredSession(
                    reader.GetString(0),
                    reader.IsDBNull(1) ? null : reader.GetString(1),
                    checked((uint)reader.GetInt64(2)),
                    reader.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)));
                sessions.Add(session.ClientId, new SessionRows(session));
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        using (var command = Command(connection, transaction, "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id FROM subscription ORDER BY client_id, filter"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                if (!sessions.TryGetValue(reader.GetString(0), out var rows))
                {
                    orphans++;
                    continue;
                }

                rows.Subscriptions.Add(new MqttStoredSubscription(
                    reader.GetString(1), reader.GetByte(2), reader.GetBoolean(3), reader.GetBoolean(4), reader.GetByte(5), checked((uint)reader.GetInt64(6))));
            }
        }

        // Rows of one message (routed to several sessions) become one message instance, shared as it was before.
        var messages = new Dictionary<long, MqttApplicationMessage>();
        var deliveries = 0;
        using (var command = Command(
            connection,
            transaction,
            """
            SELECT client_id, sequence, message_id, qos, retain, packet_id, state, subscription_ids,
                topic, payload, message_qos, message_retain, properties, expires_at
            FROM delivery ORDER BY client_id, sequence
            """))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                if (!sessions.TryGetValue(reader.GetString(0), out var rows))
                {
                    orphans++;
                    continue;
                }

                var messageId = reader.GetInt64(2);
                if (!messages.TryGetValue(messageId, out var message))
                {
                    message = ReadMessage(reader, topicUtf8: (byte[])reader.GetValue(8), first: 9);
                    messages.Add(messageId, message);
                }

                rows.Deliveries.Add(new MqttStoredDelivery(
                    reader.GetInt64(1),
                    messageId,
                    message,
                    reader.GetByte(3),
                    reader.GetBoolean(4),
                    checked((ushort)reader.GetInt64(5)),
                    (MqttDeliveryState)reader.GetByte(6),
                    DecodeIdentifiers(reader.IsDBNull(7) ? [] : (byte[])reader.GetValue(7))));
                deliveries++;
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        using (var command = Command(connection, transaction, "SELECT client_id, packet_id FROM incoming_qos2 ORDER BY client_id, packet_id"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                if (!sessions.TryGetValue(reader.GetString(0), out var rows))
                {
                    orphans++;
                    continue;
                }

                rows.IncomingQos2.Add(checked((ushort)reader.GetInt64(1)));
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        var retained = new List<MqttApplicationMessage>();
        using (var command = Command(connection, transaction, "SELECT topic, payload, qos, retain, properties, expires_at FROM retained ORDER BY topic"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                retained.Add(ReadMessage(reader, topicUtf8: System.Text.Encoding.UTF8.GetBytes(reader.GetString(0)), first: 1));
            }
        }

        if (orphans > 0)
        {
            logger.OrphansSkipped(orphans);
        }

        var result = new List<MqttStoredSessionState>(sessions.Count);
        foreach (var rows in sessions.Values)
        {
            result.Add(new MqttStoredSessionState(rows.Session, rows.Subscriptions, rows.Deliveries, rows.IncomingQos2));
        }

        logger.Loaded(result.Count, deliveries, retained.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return new MqttStoredState(result, retained);
    }

    // Reads payload, qos, retain, properties and expires_at from column `first` on.
    private static MqttApplicationMessage ReadMessage(SqliteDataReader reader, byte[] topicUtf8, int first)
    {
        var payload = reader.IsDBNull(first) ? [] : (byte[])reader.GetValue(first);
        var properties = reader.IsDBNull(first + 3) ? [] : (byte[])reader.GetValue(first + 3);
        return new MqttApplicationMessage(topicUtf8, payload, reader.GetByte(first + 1), reader.GetBoolean(first + 2), properties)
        {
            ExpiresAt = reader.IsDBNull(first + 4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(first + 4)),
        };
    }

    private static uint[] DecodeIdentifiers(byte[] bytes)
    {
        var identifiers = new uint[bytes.Length / sizeof(uint)];
        for (var i = 0; i < identifiers.Length; i++)
        {
            identifiers[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * sizeof(uint)));
        }

        return identifiers;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>A session's rows as they are read.</summary>
    private sealed class SessionRows(MqttStoredSession session)
    {
        public MqttStoredSession Session { get; } = session;

        public List<MqttStoredSubscription> Subscriptions { get; } = [];

        public List<MqttStoredDelivery> Deliveries { get; } = [];

        public List<ushort> IncomingQos2 { get; } = [];
    }
}
