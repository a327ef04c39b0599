using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite.Mqtt;

/// <summary>Connection settings and tables of the broker's state database.</summary>
internal static class MqttStateSchema
{
    public const int Version = 1;

    public const string VersionKey = "schema_version";

    // The same durability as the telemetry store: in WAL mode with synchronous=NORMAL a commit is in the OS page
    // cache when COMMIT returns, so a killed process (kill -9, crash, OOM) loses nothing committed; a power loss
    // or kernel crash can lose the last commits (the WAL is fsynced at checkpoints, not at every commit).
    public const string WriterPragmas = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        PRAGMA busy_timeout = 10000;
        PRAGMA temp_store = MEMORY;
        """;

    // A message's content is stored once in `message` and referred to by each of its deliveries (one per
    // session it was routed to). `delivery` has no index on message_id: the store counts references in memory
    // and deletes the content with its last delivery. Tables keyed by client id are WITHOUT ROWID so that a
    // session's rows are contiguous and read back in key order; `message` and `retained` keep a rowid because
    // their rows carry payloads of up to the maximum packet size.
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
        CREATE TABLE IF NOT EXISTS message(
            id INTEGER PRIMARY KEY,
            topic BLOB NOT NULL,
            payload BLOB,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            properties BLOB,
            expires_at INTEGER);
        CREATE TABLE IF NOT EXISTS delivery(
            client_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            message_id INTEGER NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            packet_id INTEGER NOT NULL,
            state INTEGER NOT NULL,
            subscription_ids BLOB,
            PRIMARY KEY(client_id, sequence)) WITHOUT ROWID;
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
