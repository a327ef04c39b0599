using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>Connection settings and tables of the time-series store.</summary>
internal static class TelemetrySchema
{
    // Durability: in WAL mode a commit appends the transaction to the -wal file. With synchronous=NORMAL that
    // file is not fsynced on every commit, so a power loss or kernel crash can lose the last transactions, but
    // the data is in the OS page cache the moment COMMIT returns, so killing the process (kill -9, crash, OOM)
    // loses nothing that was committed. That is the guarantee AppendAsync gives; synchronous=FULL would add an
    // fsync per commit for power-loss durability at a large cost in throughput.
    public const string WriterPragmas = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        PRAGMA busy_timeout = 10000;
        PRAGMA temp_store = MEMORY;
        """;

    // telemetry_log is the durable append-only log of points not yet in a chunk (seq is the rowid, so appends are
    // plain b-tree appends without secondary indexes). telemetry_chunk holds Gorilla-compressed runs of one
    // series; max_seq is the newest log seq the chunk contains, which lets queries combine chunks with the
    // in-memory heads without seeing a point twice. series.flushed_seq is the newest seq already in a chunk.
    public const string Create = """
        CREATE TABLE IF NOT EXISTS series(
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            metric TEXT NOT NULL,
            unit TEXT,
            flushed_seq INTEGER NOT NULL DEFAULT 0,
            UNIQUE(device_id, metric));
        CREATE TABLE IF NOT EXISTS telemetry_log(
            seq INTEGER PRIMARY KEY,
            series INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            value REAL);
        CREATE TABLE IF NOT EXISTS telemetry_chunk(
            id INTEGER PRIMARY KEY,
            series INTEGER NOT NULL,
            start_ts INTEGER NOT NULL,
            end_ts INTEGER NOT NULL,
            max_seq INTEGER NOT NULL,
            count INTEGER NOT NULL,
            data BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS telemetry_chunk_series_end ON telemetry_chunk(series, end_ts);
        CREATE TABLE IF NOT EXISTS telemetry_meta(
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL) WITHOUT ROWID;
        """;

    public const string RetentionCutoffKey = "retention_cutoff_ms";

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
        Pooling = true,
    }.ToString();
}
