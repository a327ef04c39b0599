using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>Connection settings and tables of the broker's state database.</summary>
internal static class MqttStateSchema
{
    public const int Version = 2;

    public const string VersionKey = "schema_version";

    // The same durability as the telemetry store: in WAL mode with synchronous=NORMAL a commit is in the OS page
    // cache when COMMIT returns, so a killed process (kill -9, crash, OOM) loses nothing committed; a power loss
    // or kernel crash can lose the last commits (the WAL is fsynced at checkpoints, not at every commit).
    public const string WriterPragmas = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        PRAGMA busy_timeout = 10000;
        PRAGMA temp_store = MEMORY;
        PRAGMA cache_size = -32768;
        """;

    // A delivery row carries its message's content (version 1 kept content in a `message` table shared by the
    // deliveries of one message: two more statements per message, which cost more than the copies saved when a
    // message goes to several persistent sessions). message_id still tells which rows hold the same message, so
    // that the load shares one instance between them. A delivery's key is a row id the writer assigns in
    // increasing order (see DeliveryRowIndex), with no index on (client_id, sequence). The other tables keyed by
    // client id are WITHOUT ROWID so that a session's rows are contiguous and read back in key order.
    public const string Create = """
        CREATE TABLE IF NOT EXISTS store_meta(
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS session(
            client_id TEXT PRIMARY KEY,
            owner TEXT,
            expiry_seconds INTEGER NOT NULL,
            disconnected_at INTEGER) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS subscription(
            client_id TEXT NOT NULL,
            filter TEXT NOT NULL,
            qos INTEGER NOT NULL,
            no_local INTEGER NOT NULL,
            retain_as_published INTEGER NOT NULL,
            retain_handling INTEGER NOT NULL,
            subscription_id INTEGER NOT NULL,
            PRIMARY KEY(client_id, filter)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS delivery(
            id INTEGER PRIMARY KEY,
            client_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            message_id INTEGER NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            packet_id INTEGER NOT NULL,
            state INTEGER NOT NULL,
            subscription_ids BLOB,
            topic BLOB NOT NULL,
            payload BLOB,
            message_qos INTEGER NOT NULL,
            message_retain INTEGER NOT NULL,
            properties BLOB,
            expires_at INTEGER);
        CREATE TABLE IF NOT EXISTS incoming_qos2(
            client_id TEXT NOT NULL,
            packet_id INTEGER NOT NULL,
            PRIMARY KEY(client_id, packet_id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS retained(
            topic TEXT PRIMARY KEY,
            payload BLOB,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            properties BLOB,
            expires_at INTEGER);
        """;

    // Version 1 → 2: the content of `message` moves into the rows of `delivery`. The old table is set aside
    // before Create makes the new one, and copied into it after.
    public const string SetAsideVersion1 = "ALTER TABLE delivery RENAME TO delivery_v1;";

    public const string CopyVersion1 = """
        INSERT INTO delivery(client_id, sequence, message_id, qos, retain, packet_id, state, subscription_ids,
                topic, payload, message_qos, message_retain, properties, expires_at)
            SELECT d.client_id, d.sequence, d.message_id, d.qos, d.retain, d.packet_id, d.state, d.subscription_ids,
                   m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at
            FROM delivery_v1 d JOIN message m ON m.id = d.message_id
            ORDER BY d.client_id, d.sequence;
        DROP TABLE delivery_v1;
        DROP TABLE message;
        """;

    public static string WriterConnectionString(string path) => new SqliteConnectionStringBuilder
    {
        DataSource = path,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Pooling = false,
    }.ToString();

    public static string ReaderConnectionString(string path) => new SqliteConnectionStringBuilder
    {
        DataSource = path,
        Mode = SqliteOpenMode.ReadOnly,
        Pooling = false,
    }.ToString();
}
