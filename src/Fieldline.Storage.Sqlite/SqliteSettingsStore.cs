using Fieldline.Core.Settings;

namespace Fieldline.Storage.Sqlite;

/// <summary><see cref="ISettingsStore"/> on the <c>settings</c> table of the registry database.</summary>
public sealed class SqliteSettingsStore : ISettingsStore
{
    private readonly SqliteRegistryDatabase _database;

    public SqliteSettingsStore(SqliteRegistryDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT value FROM settings WHERE key = $key";
        select.Parameters.AddWithValue("$key", key);
        return await select.ExecuteScalarAsync(cancellationToken) as byte[];
    }

    public async Task SetAsync(string key, byte[] value, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(value);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var upsert = connection.CreateCommand();
        upsert.CommandText = "INSERT INTO settings (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        upsert.Parameters.AddWithValue("$key", key);
        upsert.Parameters.AddWithValue("$value", value);
        await upsert.ExecuteNonQueryAsync(cancellationToken);
    }
}
