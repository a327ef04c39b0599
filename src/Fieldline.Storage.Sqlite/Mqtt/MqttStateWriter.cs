using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Persistence;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>
/// The writing side of <see cref="SqliteMqttStateStore"/>: its connection and one prepared statement per kind of
/// change. Used by the store's writer thread only.
/// </summary>
internal sealed class MqttStateWriter : IDisposable
{
    private readonly SqliteConnection connection;
    private readonly ILogger logger;

    private readonly List<SqliteCommand> commands = [];
    private readonly SqliteCommand putSession;
    private readonly SqliteCommand removeSessionRow;
    private readonly SqliteCommand removeSessionSubscriptions;
    private readonly SqliteCommand removeSessionIncoming;
    private readonly SqliteCommand putSubscription;
    private readonly SqliteCommand removeSubscription;

    // The statements run once or more per message: through SQLite's API directly (RawStatement).
    private readonly RawStatement putDelivery;
    private readonly RawStatement updateDelivery;
    private readonly RawStatement removeDelivery;

    private readonly DeliveryRowIndex rows = new();
    private bool rowsStale = true;
    private readonly SqliteCommand putIncoming;
    private readonly SqliteCommand removeIncoming;
    private readonly SqliteCommand putRetained;
    private readonly SqliteCommand removeRetained;
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
        putDelivery = new RawStatement(
            connection,
            """
            INSERT INTO delivery(id, client_id, sequence, message_id, qos, retain, packet_id, state, subscription_ids,
                topic, payload, message_qos, message_retain, properties, expires_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
            """);
        updateDelivery = new RawStatement(connection, "UPDATE delivery SET packet_id = ?2, state = ?3 WHERE id = ?1");
        removeDelivery = new RawStatement(connection, "DELETE FROM delivery WHERE id = ?1");
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

                writer = new MqttStateWriter(connection, logger);
                writer.ReadRows(transaction);
                transaction.Commit();
            }

            logger.Opened(path, writer.rows.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
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
            if (rowsStale)
            {
                ReadRows(transaction);
            }

            foreach (ref readonly var change in CollectionsMarshal.AsSpan(changes))
            {
                Apply(change);
            }

            transaction.Commit();
        }
        catch
        {
            // The rollback undid rows the index already took in.
            rowsStale = true;
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
                if (rows.TryGet(clientId, change.Sequence, out var updated))
                {
                    updateDelivery.Bind(1, updated);
                    updateDelivery.Bind(2, change.PacketId);
                    updateDelivery.Bind(3, (byte)change.State);
                    updateDelivery.Execute();
                }

                break;
            case MqttStateChangeKind.RemoveDelivery:
                if (rows.Remove(clientId, change.Sequence, out var removed))
                {
                    DeleteRow(removed);
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
        var rowId = rows.Assign(clientId, delivery.Sequence, out var replaced);
        if (replaced != 0)
        {
            DeleteRow(replaced);
        }

        var message = delivery.Message;
        var statement = putDelivery;
        statement.Bind(1, rowId);
        statement.BindText(2, clientId);
        statement.Bind(3, delivery.Sequence);
        statement.Bind(4, delivery.MessageId);
        statement.Bind(5, delivery.QualityOfService);
        statement.Bind(6, delivery.Retain ? 1 : 0);
        statement.Bind(7, packetId);
        statement.Bind(8, (byte)state);
        var identifiers = delivery.SubscriptionIdentifiers;
        Span<byte> encoded = stackalloc byte[Math.Min(identifiers.Count, 64) * sizeof(uint)];
        statement.BindBlobOrNull(9, identifiers.Count <= 64 ? EncodeIdentifiers(identifiers, encoded) : EncodeIdentifiers(identifiers, new byte[identifiers.Count * sizeof(uint)]));
        statement.BindBlobOrNull(10, message.TopicUtf8);
        statement.BindBlobOrNull(11, message.Payload.Span);
        statement.Bind(12, message.QualityOfService);
        statement.Bind(13, message.Retain ? 1 : 0);
        statement.BindBlobOrNull(14, message.Properties.Span);
        if (message.ExpiresAt is { } expiresAt)
        {
            statement.Bind(15, expiresAt.ToUnixTimeMilliseconds());
        }
        else
        {
            statement.BindNull(15);
        }

        statement.Execute();
    }

    private void RemoveSession(string clientId)
    {
        Run(removeSessionRow, clientId);
        Run(removeSessionSubscriptions, clientId);
        Run(removeSessionIncoming, clientId);
        if (rows.RemoveClient(clientId) is { } removed)
        {
            foreach (var rowId in removed)
            {
                DeleteRow(rowId);
            }
        }
    }

    private void DeleteRow(long rowId)
    {
        removeDelivery.Bind(1, rowId);
        removeDelivery.Execute();
    }

    private void ReadRows(SqliteTransaction transaction)
    {
        rows.Clear();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT id, client_id, sequence FROM delivery";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(reader.GetString(1), reader.GetInt64(2), reader.GetInt64(0));
        }

        rowsStale = false;
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

        var fromVersion1 = false;
        if (meta == 1)
        {
            inspect.CommandText = "SELECT value FROM store_meta WHERE key = $key";
            inspect.Parameters.AddWithValue("$key", MqttStateSchema.VersionKey);
            var version = inspect.ExecuteScalar() as long? ?? MqttStateSchema.Version;
            if (version > MqttStateSchema.Version)
            {
                throw new InvalidDataException($"{path} has MQTT state schema version {version}, newer than this build supports ({MqttStateSchema.Version}).");
            }

            fromVersion1 = version == 1;
        }

        if (fromVersion1)
        {
            Execute(connection, transaction, MqttStateSchema.SetAsideVersion1);
        }

        Execute(connection, transaction, MqttStateSchema.Create);
        if (fromVersion1)
        {
            Execute(connection, transaction, MqttStateSchema.CopyVersion1);
        }

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

    private static ReadOnlySpan<byte> EncodeIdentifiers(IReadOnlyList<uint> identifiers, Span<byte> destination)
    {
        for (var i = 0; i < identifiers.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination[(i * sizeof(uint))..], identifiers[i]);
        }

        return destination[..(identifiers.Count * sizeof(uint))];
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

            writer.putDelivery.Dispose();
            writer.updateDelivery.Dispose();
            writer.removeDelivery.Dispose();
        }

        connection.Dispose();
    }
}
