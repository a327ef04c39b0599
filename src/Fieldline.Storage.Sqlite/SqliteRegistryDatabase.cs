using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// The registry database file (<c>fieldline.db</c> in the data directory): devices, their status history and shadows,
/// service accounts and settings. Owns the schema and hands out pooled connections.
/// </summary>
/// <remarks>
/// Migrations: every statement of <see cref="Schema"/> is idempotent (IF NOT EXISTS), so opening a file of an
/// older version adds what that version lacked. Version 2 added <c>service_accounts</c> and the triggers that keep
/// device ids and service account user names apart; version 3 added <c>shadows</c>, version 4 <c>commands</c>, version 5 <c>webhooks</c>.
/// </remarks>
public sealed class SqliteRegistryDatabase : IDisposable
{
    /// <summary>The file name inside the data directory.</summary>
    public const string FileName = "fieldline.db";

    private const int SchemaVersion = 7;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS devices (
            device_id        TEXT PRIMARY KEY NOT NULL,
            name             TEXT NOT NULL,
            type             TEXT NOT NULL,
            model            TEXT,
            firmware_version TEXT,
            status           TEXT NOT NULL,
            location         TEXT,
            last_seen        INTEGER,
            registered_at    INTEGER NOT NULL,
            metadata         TEXT NOT NULL DEFAULT '{}',
            token_hash       BLOB NOT NULL,
            certificate_fingerprint TEXT
        );
        CREATE INDEX IF NOT EXISTS ix_devices_type_status ON devices (type, status, device_id);
        CREATE INDEX IF NOT EXISTS ix_devices_token_hash ON devices (token_hash);
        CREATE INDEX IF NOT EXISTS ix_devices_status ON devices (status, device_id);
        CREATE INDEX IF NOT EXISTS ix_devices_name ON devices (name, device_id);
        CREATE INDEX IF NOT EXISTS ix_devices_last_seen ON devices (ifnull(last_seen, -1), device_id);
        CREATE UNIQUE INDEX IF NOT EXISTS ix_devices_certificate_fingerprint ON devices (certificate_fingerprint)
            WHERE certificate_fingerprint IS NOT NULL;
        CREATE TABLE IF NOT EXISTS device_status_history (
            device_id TEXT NOT NULL,
            status    TEXT NOT NULL,
            at        INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ix_device_status_history_device ON device_status_history (device_id, at);
        CREATE TABLE IF NOT EXISTS settings (
            key   TEXT PRIMARY KEY NOT NULL,
            value BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS service_accounts (
            username            TEXT PRIMARY KEY NOT NULL,
            description         TEXT,
            rules               TEXT NOT NULL DEFAULT '[]',
            password_hash       BLOB NOT NULL,
            password_salt       BLOB NOT NULL,
            password_iterations INTEGER NOT NULL,
            created_at          INTEGER NOT NULL,
            updated_at          INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS shadows (
            device_id  TEXT PRIMARY KEY NOT NULL,
            version    INTEGER NOT NULL,
            document   TEXT NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TRIGGER IF NOT EXISTS devices_delete_shadow AFTER DELETE ON devices
        BEGIN DELETE FROM shadows WHERE device_id = OLD.device_id; END;
        CREATE TABLE IF NOT EXISTS commands (
            seq          INTEGER PRIMARY KEY,
            command_id   TEXT NOT NULL UNIQUE,
            device_id    TEXT NOT NULL,
            type         TEXT NOT NULL,
            parameters   TEXT NOT NULL,
            state        TEXT NOT NULL,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER NOT NULL,
            timeout_ms   INTEGER NOT NULL,
            delivered_at INTEGER,
            completed_at INTEGER,
            deadline     INTEGER,
            message      TEXT
        );
        CREATE INDEX IF NOT EXISTS ix_commands_device ON commands (device_id, seq);
        CREATE INDEX IF NOT EXISTS ix_commands_deadline ON commands (deadline) WHERE deadline IS NOT NULL;
        CREATE TRIGGER IF NOT EXISTS devices_delete_commands AFTER DELETE ON devices
        BEGIN DELETE FROM commands WHERE device_id = OLD.device_id; END;
        CREATE TABLE IF NOT EXISTS webhooks (
            id          TEXT PRIMARY KEY NOT NULL,
            url         TEXT NOT NULL,
            event_types TEXT NOT NULL,
            device_id   TEXT,
            secret      TEXT NOT NULL,
            created_at  INTEGER NOT NULL
        );
        CREATE TRIGGER IF NOT EXISTS devices_id_is_no_service_account BEFORE INSERT ON devices
        WHEN EXISTS (SELECT 1 FROM service_accounts WHERE username = NEW.device_id)
        BEGIN SELECT RAISE(ABORT, 'name taken: a service account has this user name'); END;
        CREATE TRIGGER IF NOT EXISTS service_accounts_name_is_no_device BEFORE INSERT ON service_accounts
        WHEN EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.username)
        BEGIN SELECT RAISE(ABORT, 'name taken: a device has this id'); END;
        """;

    /// <summary>SQLITE_CONSTRAINT_TRIGGER: a trigger refused the write (the name triggers above).</summary>
    internal const int SqliteConstraintTrigger = 1811;

    /// <summary>SQLITE_CONSTRAINT_PRIMARYKEY.</summary>
    internal const int SqliteConstraintPrimaryKey = 1555;

    private readonly string _connectionString;

    /// <summary>Points at <c>fieldline.db</c> in <paramref name="dataDirectory"/>; nothing is opened until used.</summary>
    public SqliteRegistryDatabase(string dataDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        FilePath = Path.Combine(Path.GetFullPath(dataDirectory), FileName);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = FilePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
    }

    /// <summary>The absolute path of the database file.</summary>
    public string FilePath { get; }

    /// <summary>Creates the file and the schema when missing. Safe to call more than once.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        await using var connection = await OpenConnectionAsync(cancellationToken);

        // WAL lets API reads run while the broker records connection status; the mode is stored in the file.
        await using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL;";
            await wal.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using (var version = connection.CreateCommand())
        {
            version.Transaction = transaction;
            version.CommandText = "PRAGMA user_version;";
            var current = Convert.ToInt64(await version.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
            if (current > SchemaVersion)
            {
                throw new InvalidOperationException(
                    $"{FilePath} has schema version {current}, newer than this build supports ({SchemaVersion}).");
            }

            // Version 0 is a new file: the schema below creates everything. Older files get what they lack first,
            // so that the schema's indexes find their columns.
            if (current is > 0 and < 2)
            {
                version.CommandText = "ALTER TABLE devices ADD COLUMN certificate_fingerprint TEXT;";
                await version.ExecuteNonQueryAsync(cancellationToken);
            }
        }

        await using (var create = connection.CreateCommand())
        {
            create.Transaction = transaction;
            create.CommandText = Schema + $"PRAGMA user_version = {SchemaVersion};";
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>An open connection with the per-connection settings applied.</summary>
    internal async Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);

            // NORMAL is durable in WAL mode except for the last commits on power loss, which is acceptable
            // for registry writes and far cheaper than an fsync per commit. Set at every open: remembering which
            // handles were set, by their address, went wrong when a pool was cleared and a new handle came at a
            // closed one's address (it kept SQLite's FULL), and setting it once per handle was not measurably faster.
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA synchronous = NORMAL;";
            await pragma.ExecuteNonQueryAsync(cancellationToken);

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Closes the pooled connections so the file can be moved or deleted.</summary>
    public void Dispose()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }
}
