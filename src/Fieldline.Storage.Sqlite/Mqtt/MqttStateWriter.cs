using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>
/// The writing side of <see cref="SqliteMqttStateStore"/>: its connection, one prepared command per kind of change
/// and the reference counts of stored message contents. Used by the store's writer thread only.
/// </summary>
internal sealed class MqttStateWriter : IDisposable
{
    private readonly SqliteConnection connection;
    private readonly ILogger logger;

    // How many deliveries refer to each stored message content, so that removing a delivery knows without a
    // query whether the content goes too. Rebuilt from the delivery table at open and after a failed batch
    // (whose rollback undid changes these counts had already taken in).
    private readonly Dictionary<long, int> references = [];
    private bool referencesStale;

    private readonly List<SqliteCommand> commands = [];
    private readonly SqliteCommand putSession;
    private readonly SqliteCommand removeSessionRow;
    private readonly SqliteCommand removeSessionSubscriptions;
    private readonly SqliteCommand removeSessionDeliveries;
    private readonly SqliteCommand removeSessionIncoming;
    private readonly SqliteCommand putSubscription;
    private readonly SqliteCommand removeSubscription;
    private readonly SqliteCommand putMessage;
    private readonly SqliteCommand removeMessage;
    private readonly SqliteCommand putDelivery;
    private readonly SqliteCommand updateDelivery;
    private readonly SqliteCommand removeDelivery;
    private readonly SqliteCommand putIncoming;
    private readonly SqliteCommand removeIncoming;
    private readonly SqliteCommand putRetained;
    private readonly SqliteCommand removeRetained;
    private readonly List<long> releasedMessages = [];
    private readonly MqttStateBatchCoalescer coalescer = new();

    private MqttStateWriter(SqliteConnection connection, ILogger logger)
    {
        this.connection = connection;
        this.logger = logger;
        putSession = Prepare(
            """
            INSERT INTO session(client_id, owner, expiry_seconds, disconnected_at) VALUES ($client, $owner, $expiry, $disconnected)
            ON CONFLICT(client_id) DO UPDATE SET owner = excluded.owner, expiry_seconds = excluded.expiry_seconds, disconnected_at = excluded.disconnected_at
            """,
            "$client", "$owner", "$expiry", "$disconnected");
        removeSessionRow = Prepare("DELETE FROM session WHERE client_id = $client", "$client");
        removeSessionSubscriptions = Prepare("DELETE FROM subscription WHERE client_id = $client", "$client");
        removeSessionDeliveries = Prepare("DELETE FROM delivery WHERE client_id = $client RETURNING message_id", "$client");
        removeSessionIncoming = Prepare("DELETE FROM incoming_qos2 WHERE client_id = $client", "$client");
        putSubscription = Prepare(
            """
            INSERT INTO subscription(client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
            VALUES ($client, $filter, $qos, $noLocal, $rap, $handling, $id)
            ON CONFLICT(client_id, filter) DO UPDATE SET qos = excluded.qos, no_local = excluded.no_local,
                retain_as_published = excluded.retain_as_published, retain_handling = excluded.retain_handling, subscription_id = excluded.subscription_id
            """,
            "$client", "$filter", "$qos", "$noLocal", "$rap", "$handling", "$id");
        removeSubscription = Prepare("DELETE FROM subscription WHERE client_id = $client AND filter = $filter", "$client", "$filter");

        // REPLACE rather than INSERT: a row left by an earlier inconsistency must not fail a whole batch.
        putMessage = Prepare(
            "INSERT OR REPLACE INTO message(id, topic, payload, qos, retain, properties, expires_at) VALUES ($id, $topic, $payload, $qos, $retain, $properties, $expires)",
            "$id", "$topic", "$payload", "$qos", "$retain", "$properties", "$expires");
        removeMessage = Prepare("DELETE FROM message WHERE id = $id", "$id");
        putDelivery = Prepare(
            """
            INSERT OR REPLACE INTO delivery(client_id, sequence, message_id, qos, retain, packet_id, state, subscription_ids)
            VALUES ($client, $sequence, $message, $qos, $retain, $packet, $state, $ids)
            """,
            "$client", "$sequence", "$message", "$qos", "$retain", "$packet", "$state", "$ids");
        updateDelivery = Prepare(
            "UPDATE delivery SET packet_id = $packet, state = $state WHERE client_id = $client AND sequence = $sequence",
            "$client", "$sequence", "$packet", "$state");
        removeDelivery = Prepare("DELETE FROM delivery WHERE client_id = $client AND sequence = $sequence RETURNING message_id", "$client", "$sequence");
        putIncoming = Prepare("INSERT OR IGNORE INTO incoming_qos2(client_id, packet_id) VALUES ($client, $packet)", "$client", "$packet");
        removeIncoming = Prepare("DELETE FROM incoming_qos2 WHERE client_id = $client AND packet_id = $packet", "$client", "$packet");
        putRetained = Prepare(
            """
            INSERT INTO retained(topic, payload, qos, retain, properties, expires_at) VALUES ($topic, $payload, $qos, $retain, $properties, $expires)
            ON CONFLICT(topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, retain = excluded.retain,
                properties = excluded.properties, expires_at = excluded.expires_at
            """,
            "$topic", "$payload", "$qos", "$retain", "$properties", "$expires");
        removeRetained = Prepare("DELETE FROM retained WHERE topic = $topic", "$topic");
    }

    /// <summary>How many distinct message contents are stored.</summary>
    public int MessageCount => references.Count;

    /// <summary>Opens (creating when missing) the database, checks and creates its schema and counts message references.</summary>
    /// <exception cref="InvalidDataException">The file is not an SQLite database, is damaged, or holds something else.</exception>
    public static MqttStateWriter Open(string path, ILogger logger)
    {
        var started = Stopwatch.GetTimestamp();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var connection = new SqliteConnection(MqttStateSchema.WriterConnectionString(path));
        MqttStateWriter? writer = null;
        try
        {
            connection.Open();
            Execute(connection, null, MqttStateSchema.WriterPragmas);
            using (var transaction = connection.BeginTransaction(deferred: false))
            {
                PrepareSchema(connection, transaction, path);

                // Content whose deliveries are all gone (left by a replaced delivery) is dropped here, once.
                Execute(connection, transaction, "DELETE FROM message WHERE id NOT IN (SELECT message_id FROM delivery)");
                writer = new MqttStateWriter(connection, logger);
                writer.CountReferences(transaction);
                transaction.Commit();
            }

            logger.Opened(path, writer.MessageCount, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            return writer;
        }
        catch (SqliteException ex) when ((ex.SqliteErrorCode & 0xFF) is SQLitePCL.raw.SQLITE_NOTADB or SQLitePCL.raw.SQLITE_CORRUPT)
        {
            Close(writer, connection);
            throw new InvalidDataException(
                $"{path} is not a readable MQTT state database (SQLite error {ex.SqliteErrorCode}: {ex.Message}). " +
                "Move the file aside to start with no stored sessions and retained messages.",
                ex);
        }
        catch
        {
            Close(writer, connection);
            throw;
        }
    }

    /// <summary>Applies <paramref name="changes"/> in order in one transaction and commits it.</summary>
    public void Apply(List<MqttStateChange> changes)
    {
        if (coalescer.Coalesce(changes) == 0)
        {
            return;
        }

        // IMMEDIATE: the write lock is taken up front, so a batch that reads first (recounting references) cannot
        // fail to upgrade its snapshot when another connection committed meanwhile.
        using var transaction = connection.BeginTransaction(deferred: false);
        foreach (var command in commands)
        {
            command.Transaction = transaction;
        }

        try
        {
            if (referencesStale)
            {
                CountReferences(transaction);
            }

            foreach (ref readonly var change in CollectionsMarshal.AsSpan(changes))
            {
                Apply(change);
            }

            transaction.Commit();
        }
        catch
        {
            referencesStale = true;
            throw;
        }
        finally
        {
            foreach (var command in commands)
            {
                command.Transaction = null;
            }
        }
    }

    /// <summary>Folds the WAL back into the database, so that a stopped store is one file, and closes it.</summary>
    public void Dispose()
    {
        try
        {
            Execute(connection, null, "PRAGMA wal_checkpoint(TRUNCATE)");
        }
        catch (SqliteException ex)
        {
            logger.CheckpointFailed(ex);
        }

        Close(this, connection);
    }

    private void Apply(in MqttStateChange change)
    {
        var clientId = change.ClientId!;
        switch (change.Kind)
        {
            case MqttStateChangeKind.PutSession:
                var session = (MqttStoredSession)change.Item!;
                Run(putSession, clientId, session.Owner, (long)session.ExpirySeconds, session.DisconnectedAt?.ToUnixTimeMilliseconds());
                break;
            case MqttStateChangeKind.RemoveSession:
                RemoveSession(clientId);
                break;
            case MqttStateChangeKind.PutSubscription:
                var subscription = (MqttStoredSubscription)change.Item!;
                Run(putSubscription, clientId, subscription.Filter, subscription.MaximumQoS, subscription.NoLocal, subscription.RetainAsPublished, subscription.RetainHandling, (long)subscription.SubscriptionIdentifier);
                break;
            case MqttStateChangeKind.RemoveSubscription:
                Run(removeSubscription, clientId, (string)change.Item!);
                break;
            case MqttStateChangeKind.PutDelivery:
                PutDelivery(clientId, (MqttStoredDelivery)change.Item!, change.PacketId, change.State);
                break;
            case MqttStateChangeKind.UpdateDelivery:
                Run(updateDelivery, clientId, change.Sequence, change.PacketId, (byte)change.State);
                break;
            case MqttStateChangeKind.RemoveDelivery:
                SetParameters(removeDelivery, clientId, change.Sequence);
                if (removeDelivery.ExecuteScalar() is long messageId)
                {
                    Release(messageId);
                }

                break;
            case MqttStateChangeKind.PutIncomingQos2:
                Run(putIncoming, clientId, change.PacketId);
                break;
            case MqttStateChangeKind.RemoveIncomingQos2:
                Run(removeIncoming, clientId, change.PacketId);
                break;
            case MqttStateChangeKind.PutRetained:
                var retained = (MqttApplicationMessage)change.Item!;
                Run(putRetained, retained.Topic, Blob(retained.Payload), retained.QualityOfService, retained.Retain, Blob(retained.Properties), retained.ExpiresAt?.ToUnixTimeMilliseconds());
                break;
            case MqttStateChangeKind.RemoveRetained:
                Run(removeRetained, (string)change.Item!);
                break;
            case MqttStateChangeKind.Skipped:
                break;
            default:
                throw new UnreachableException($"Unknown change kind {change.Kind}.");
        }
    }

    private void PutDelivery(string clientId, MqttStoredDelivery delivery, ushort packetId, MqttDeliveryState state)
    {
        ref var count = ref CollectionsMarshal.GetValueRefOrAddDefault(references, delivery.MessageId, out _);
        if (count++ == 0)
        {
            var message = delivery.Message;
            Run(putMessage, delivery.MessageId, message.TopicUtf8, Blob(message.Payload), message.QualityOfService, message.Retain, Blob(message.Properties), message.ExpiresAt?.ToUnixTimeMilliseconds());
        }

        Run(putDelivery, clientId, delivery.Sequence, delivery.MessageId, delivery.QualityOfService, delivery.Retain, packetId, (byte)state, EncodeIdentifiers(delivery.SubscriptionIdentifiers));
    }

    private void RemoveSession(string clientId)
    {
        Run(removeSessionRow, clientId);
        Run(removeSessionSubscriptions, clientId);
        Run(removeSessionIncoming, clientId);
        SetParameters(removeSessionDeliveries, clientId);
        releasedMessages.Clear();
        using (var reader = removeSessionDeliveries.ExecuteReader())
        {
            while (reader.Read())
            {
                releasedMessages.Add(reader.GetInt64(0));
            }
        }

        foreach (var messageId in releasedMessages)
        {
            Release(messageId);
        }
    }

    private void Release(long messageId)
    {
        if (!references.TryGetValue(messageId, out var count))
        {
            return;
        }

        if (count > 1)
        {
            references[messageId] = count - 1;
            return;
        }

        references.Remove(messageId);
        Run(removeMessage, messageId);
    }

    private void CountReferences(SqliteTransaction transaction)
    {
        references.Clear();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT message_id, COUNT(*) FROM delivery GROUP BY message_id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            references[reader.GetInt64(0)] = reader.GetInt32(1);
        }

        referencesStale = false;
    }

    private static void PrepareSchema(SqliteConnection connection, SqliteTransaction transaction, string path)
    {
        using var inspect = connection.CreateCommand();
        inspect.Transaction = transaction;
        inspect.CommandText = "SELECT COUNT(*), COUNT(*) FILTER (WHERE name = 'store_meta') FROM sqlite_master WHERE type = 'table'";
        long tables, meta;
        using (var reader = inspect.ExecuteReader())
        {
            reader.Read();
            (tables, meta) = (reader.GetInt64(0), reader.GetInt64(1));
        }

        if (meta == 0 && tables > 0)
        {
            throw new InvalidDataException($"{path} is an SQLite database of something else (it has tables but no MQTT state schema); refusing to add the broker's tables to it.");
        }

        if (meta == 1)
        {
            inspect.CommandText = "SELECT value FROM store_meta WHERE key = $key";
            inspect.Parameters.AddWithValue("$key", MqttStateSchema.VersionKey);
            if (inspect.ExecuteScalar() is long version && version > MqttStateSchema.Version)
            {
                throw new InvalidDataException($"{path} has MQTT state schema version {version}, newer than this build supports ({MqttStateSchema.Version}).");
            }
        }

        Execute(connection, transaction, MqttStateSchema.Create);
        Execute(connection, transaction, $"INSERT OR REPLACE INTO store_meta(key, value) VALUES ('{MqttStateSchema.VersionKey}', {MqttStateSchema.Version})");
    }

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        commands.Add(command);
        return command;
    }

    private static void Run(SqliteCommand command, params ReadOnlySpan<object?> values)
    {
        SetParameters(command, values);
        command.ExecuteNonQuery();
    }

    private static void SetParameters(SqliteCommand command, params ReadOnlySpan<object?> values)
    {
        var parameters = command.Parameters;
        for (var i = 0; i < values.Length; i++)
        {
            // Values bind by their CLR type: strings as text, byte arrays as blobs, numbers and bools as integers.
            parameters[i].Value = values[i] ?? DBNull.Value;
        }
    }

    // An empty payload or properties block is stored as NULL and read back as empty.
    private static byte[]? Blob(ReadOnlyMemory<byte> memory)
    {
        if (memory.IsEmpty)
        {
            return null;
        }

        // The broker's messages own exactly-sized arrays (MqttApplicationMessage.CopyOf), so they bind without a copy.
        return MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : memory.ToArray();
    }

    private static byte[]? EncodeIdentifiers(IReadOnlyList<uint> identifiers)
    {
        if (identifiers is null || identifiers.Count == 0)
        {
            return null;
        }

        var bytes = new byte[identifiers.Count * sizeof(uint)];
        for (var i = 0; i < identifiers.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * sizeof(uint)), identifiers[i]);
        }

        return bytes;
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static void Close(MqttStateWriter? writer, SqliteConnection connection)
    {
        if (writer is not null)
        {
            foreach (var command in writer.commands)
            {
                command.Dispose();
            }
        }

        connection.Dispose();
    }
}
