using Fieldline.Core.Shadows;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// <see cref="IShadowStore"/> on the <c>shadows</c> table of the registry database. A write names the version it
/// replaces, so that two processes sharing the file cannot both win; deleting a device deletes its shadow (a trigger).
/// </summary>
public sealed class SqliteShadowStore : IShadowStore
{
    private readonly SqliteRegistryDatabase _database;

    public SqliteShadowStore(SqliteRegistryDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    public async Task<StoredShadow?> GetAsync(string deviceId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT version, document, updated_at FROM shadows WHERE device_id = $device";
        select.Parameters.AddWithValue("$device", deviceId);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new StoredShadow(deviceId, reader.GetInt64(0), reader.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)));
    }

    public async Task<bool> SaveAsync(StoredShadow shadow, long expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(shadow);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var write = connection.CreateCommand();

        // Version 0 inserts (and loses to anyone who inserted first); otherwise only the version read is replaced.
        write.CommandText = expectedVersion == 0
            ? "INSERT INTO shadows (device_id, version, document, updated_at) VALUES ($device, $version, $document, $at) ON CONFLICT (device_id) DO NOTHING"
            : "UPDATE shadows SET version = $version, document = $document, updated_at = $at WHERE device_id = $device AND version = $expected";
        write.Parameters.AddWithValue("$device", shadow.DeviceId);
        write.Parameters.AddWithValue("$version", shadow.Version);
        write.Parameters.AddWithValue("$document", shadow.Document);
        write.Parameters.AddWithValue("$at", shadow.UpdatedAt.ToUnixTimeMilliseconds());
        write.Parameters.AddWithValue("$expected", expectedVersion);
        return await write.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<bool> DeleteAsync(string deviceId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM shadows WHERE device_id = $device";
        delete.Parameters.AddWithValue("$device", deviceId);
        return await delete.ExecuteNonQueryAsync(cancellationToken) == 1;
    }
}
