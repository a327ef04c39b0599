using System.Data.Common;
using System.Text.Json;
using Fieldline.Core.Devices;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// <see cref="IDeviceRegistry"/> on SQLite. Every status change, whether from an API update or from the
/// device's connection, is appended to <c>device_status_history</c> in the same transaction.
/// </summary>
public sealed class SqliteDeviceRegistry : IDeviceRegistry
{
    private const int SqliteConstraintUnique = 2067;

    private const string SelectDevice = """
        SELECT device_id, name, type, model, firmware_version, status, location, last_seen, registered_at, metadata, certificate_fingerprint
        FROM devices
        """;

    private readonly SqliteRegistryDatabase _database;
    private readonly TimeProvider _timeProvider;

    public SqliteDeviceRegistry(SqliteRegistryDatabase database, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _database = database;
        _timeProvider = timeProvider;
    }

    public async Task<RegistryWriteResult> CreateAsync(Device device, byte[] tokenHash, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(tokenHash);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using (var insert = connection.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = """
                INSERT INTO devices (device_id, name, type, model, firmware_version, status, location, last_seen, registered_at, metadata, token_hash, certificate_fingerprint)
                VALUES ($id, $name, $type, $model, $firmware, $status, $location, $last_seen, $registered_at, $metadata, $token_hash, $certificate_fingerprint)
                """;
            AddDeviceParameters(insert, device);
            insert.Parameters.AddWithValue("$last_seen", (object?)device.LastSeen?.ToUnixTimeMilliseconds() ?? DBNull.Value);
            insert.Parameters.AddWithValue("$registered_at", device.RegisteredAt.ToUnixTimeMilliseconds());
            insert.Parameters.AddWithValue("$token_hash", tokenHash);
            try
            {
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteRegistryDatabase.SqliteConstraintPrimaryKey)
            {
                return RegistryWriteResult.Conflict;
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteConstraintUnique)
            {
                // The only unique column besides the key.
                return RegistryWriteResult.CertificateInUse;
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteRegistryDatabase.SqliteConstraintTrigger)
            {
                // Device ids and service account user names are both MQTT user names: the schema keeps them apart.
                return RegistryWriteResult.NameTaken;
            }
        }

        // The history starts with the status the device was registered in.
        await AppendHistoryAsync(transaction, device.DeviceId, device.Status, device.RegisteredAt, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return RegistryWriteResult.Ok;
    }

    public async Task<Device?> GetAsync(string deviceId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = SelectDevice + " WHERE device_id = $id";
        select.Parameters.AddWithValue("$id", deviceId);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadDevice(reader) : null;
    }

    public async Task<DevicePage> ListAsync(DeviceQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.Limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.Limit, 1000);

        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();

        // Only the filters in use go into the SQL so that SQLite can pick the (type, status, device_id) index.
        var conditions = new List<string>(3);
        if (query.Type is { } type)
        {
            conditions.Add("type = $type");
            select.Parameters.AddWithValue("$type", ToText(type));
        }

        if (query.Status is { } status)
        {
            conditions.Add("status = $status");
            select.Parameters.AddWithValue("$status", ToText(status));
        }

        if (query.IdPrefix is { Length: > 0 } prefix)
        {
            // Ids are ASCII letters, digits, '_', '.', '-' (all below 0x7F), compared bytewise: the prefix's ids lie
            // between the prefix and the prefix followed by 0x7F, a range of the id index.
            conditions.Add("device_id >= $prefix AND device_id < $prefix_end");
            select.Parameters.AddWithValue("$prefix", prefix);
            select.Parameters.AddWithValue("$prefix_end", prefix + "\u007f");
        }

        if (query.Search is { Length: > 0 } search)
        {
            // instr rather than LIKE: the text needs no escaping of % and _. A scan, but of one table with no join.
            conditions.Add("(instr(lower(device_id), lower($search)) = 1 OR instr(lower(name), lower($search)) > 0)");
            select.Parameters.AddWithValue("$search", search);
        }

        // The sort key as SQL, matching an index: (key, device_id) pages by the row value after the cursor's.
        var key = query.Order switch
        {
            DeviceOrder.Name => "name",
            DeviceOrder.LastSeen => "ifnull(last_seen, -1)",
            _ => null,
        };
        var direction = query.Descending ? "DESC" : "ASC";
        var comparison = query.Descending ? "<" : ">";
        if (query.After is { } after)
        {
            if (key is null)
            {
                conditions.Add($"device_id {comparison} $after");
                select.Parameters.AddWithValue("$after", after);
            }
            else
            {
                var (afterKey, afterId) = DeviceCursor.Decode(after, query.Order);
                conditions.Add($"({key}, device_id) {comparison} ($after_key, $after)");
                select.Parameters.AddWithValue("$after_key", afterKey);
                select.Parameters.AddWithValue("$after", afterId);
            }
        }

        var where = conditions.Count == 0 ? string.Empty : " WHERE " + string.Join(" AND ", conditions);
        var orderBy = key is null ? $" ORDER BY device_id {direction}" : $" ORDER BY {key} {direction}, device_id {direction}";
        select.CommandText = SelectDevice + where + orderBy + " LIMIT $limit";

        // One row more than asked tells whether there is a next page without a second query.
        select.Parameters.AddWithValue("$limit", query.Limit + 1);

        var items = new List<Device>(Math.Min(query.Limit + 1, 128));
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                items.Add(ReadDevice(reader));
            }
        }

        if (items.Count <= query.Limit)
        {
            return new DevicePage(items, NextCursor: null);
        }

        items.RemoveAt(items.Count - 1);
        return new DevicePage(items, DeviceCursor.Encode(items[^1], query.Order));
    }

    public async Task<RegistryWriteResult> UpdateAsync(Device device, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(device);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);

        // IMMEDIATE: read the old status and write in one step, so concurrent writers cannot lose a history entry.
        await using var transaction = connection.BeginTransaction(deferred: false);
        var previous = await GetStatusAsync(transaction, device.DeviceId, cancellationToken);
        if (previous is null)
        {
            return RegistryWriteResult.NotFound;
        }

        await using (var update = connection.CreateCommand())
        {
            update.Transaction = transaction;
            update.CommandText = """
                UPDATE devices
                SET name = $name, type = $type, model = $model, firmware_version = $firmware,
                    status = $status, location = $location, metadata = $metadata,
                    certificate_fingerprint = $certificate_fingerprint
                WHERE device_id = $id
                """;
            AddDeviceParameters(update, device);
            try
            {
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteConstraintUnique)
            {
                return RegistryWriteResult.CertificateInUse;
            }
        }

        if (previous != device.Status)
        {
            await AppendHistoryAsync(transaction, device.DeviceId, device.Status, _timeProvider.GetUtcNow(), cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return RegistryWriteResult.Ok;
    }

    public async Task<RegistryWriteResult> DeleteAsync(string deviceId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using var delete = connection.CreateCommand();
        delete.Transaction = transaction;
        delete.CommandText = "DELETE FROM devices WHERE device_id = $id";
        delete.Parameters.AddWithValue("$id", deviceId);
        if (await delete.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            return RegistryWriteResult.NotFound;
        }

        delete.CommandText = "DELETE FROM device_status_history WHERE device_id = $id";
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return RegistryWriteResult.Ok;
    }

    public async Task<RegistryWriteResult> SetTokenHashAsync(string deviceId, byte[] tokenHash, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tokenHash);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var update = connection.CreateCommand();
        update.CommandText = "UPDATE devices SET token_hash = $token_hash WHERE device_id = $id";
        update.Parameters.AddWithValue("$id", deviceId);
        update.Parameters.AddWithValue("$token_hash", tokenHash);
        return await update.ExecuteNonQueryAsync(cancellationToken) == 0 ? RegistryWriteResult.NotFound : RegistryWriteResult.Ok;
    }

    public async Task<DeviceCredentials?> GetCredentialsAsync(string deviceId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT token_hash, status FROM devices WHERE device_id = $id";
        select.Parameters.AddWithValue("$id", deviceId);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new DeviceCredentials(deviceId, (byte[])reader.GetValue(0), ParseStatus(reader.GetString(1)));
    }

    public async Task<DeviceCredentials?> FindByTokenHashAsync(byte[] tokenHash, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tokenHash);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT device_id, token_hash, status FROM devices WHERE token_hash = $token_hash LIMIT 1";
        select.Parameters.AddWithValue("$token_hash", tokenHash);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new DeviceCredentials(reader.GetString(0), (byte[])reader.GetValue(1), ParseStatus(reader.GetString(2)));
    }

    public async Task<DeviceCredentials?> FindByCertificateFingerprintAsync(string fingerprint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT device_id, token_hash, status FROM devices WHERE certificate_fingerprint = $fingerprint";
        select.Parameters.AddWithValue("$fingerprint", fingerprint);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new DeviceCredentials(reader.GetString(0), (byte[])reader.GetValue(1), ParseStatus(reader.GetString(2)));
    }

    public async Task SetConnectionStatusAsync(string deviceId, DeviceStatus status, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);
        var previous = await GetStatusAsync(transaction, deviceId, cancellationToken);
        if (previous is null)
        {
            return;
        }

        // An operator put the device in maintenance; connecting or disconnecting must not take it out.
        var next = previous == DeviceStatus.Maintenance ? DeviceStatus.Maintenance : status;
        await using (var update = connection.CreateCommand())
        {
            update.Transaction = transaction;
            update.CommandText = "UPDATE devices SET status = $status, last_seen = $at WHERE device_id = $id";
            update.Parameters.AddWithValue("$id", deviceId);
            update.Parameters.AddWithValue("$status", ToText(next));
            update.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
            await update.ExecuteNonQueryAsync(cancellationToken);
        }

        if (next != previous)
        {
            await AppendHistoryAsync(transaction, deviceId, next, at, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyDictionary<(DeviceStatus Status, DeviceType Type), long>> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT status, type, COUNT(*) FROM devices GROUP BY status, type";
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        var counts = new Dictionary<(DeviceStatus, DeviceType), long>();
        while (await reader.ReadAsync(cancellationToken))
        {
            counts[(ParseStatus(reader.GetString(0)), ParseType(reader.GetString(1)))] = reader.GetInt64(2);
        }

        return counts;
    }

    public async Task<IReadOnlyList<DeviceStatusChange>> GetStatusHistoryAsync(string deviceId, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();

        // rowid breaks ties between changes recorded in the same millisecond.
        select.CommandText = """
            SELECT status, at FROM device_status_history
            WHERE device_id = $id ORDER BY at DESC, rowid DESC LIMIT $limit
            """;
        select.Parameters.AddWithValue("$id", deviceId);
        select.Parameters.AddWithValue("$limit", limit);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        var history = new List<DeviceStatusChange>();
        while (await reader.ReadAsync(cancellationToken))
        {
            history.Add(new DeviceStatusChange(ParseStatus(reader.GetString(0)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1))));
        }

        return history;
    }

    private static async Task<DeviceStatus?> GetStatusAsync(SqliteTransaction transaction, string deviceId, CancellationToken cancellationToken)
    {
        await using var select = transaction.Connection!.CreateCommand();
        select.Transaction = transaction;
        select.CommandText = "SELECT status FROM devices WHERE device_id = $id";
        select.Parameters.AddWithValue("$id", deviceId);
        return await select.ExecuteScalarAsync(cancellationToken) is string text ? ParseStatus(text) : null;
    }

    private static async Task AppendHistoryAsync(SqliteTransaction transaction, string deviceId, DeviceStatus status, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await using var insert = transaction.Connection!.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO device_status_history (device_id, status, at) VALUES ($id, $status, $at)";
        insert.Parameters.AddWithValue("$id", deviceId);
        insert.Parameters.AddWithValue("$status", ToText(status));
        insert.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void AddDeviceParameters(SqliteCommand command, Device device)
    {
        command.Parameters.AddWithValue("$id", device.DeviceId);
        command.Parameters.AddWithValue("$name", device.Name);
        command.Parameters.AddWithValue("$type", ToText(device.Type));
        command.Parameters.AddWithValue("$model", (object?)device.Model ?? DBNull.Value);
        command.Parameters.AddWithValue("$firmware", (object?)device.FirmwareVersion ?? DBNull.Value);
        command.Parameters.AddWithValue("$status", ToText(device.Status));
        command.Parameters.AddWithValue("$location", (object?)device.Location ?? DBNull.Value);
        command.Parameters.AddWithValue("$metadata", JsonSerializer.Serialize(device.Metadata));
        command.Parameters.AddWithValue("$certificate_fingerprint", (object?)device.CertificateFingerprint ?? DBNull.Value);
    }

    private static Device ReadDevice(DbDataReader reader) => new()
    {
        DeviceId = reader.GetString(0),
        Name = reader.GetString(1),
        Type = ParseType(reader.GetString(2)),
        Model = reader.IsDBNull(3) ? null : reader.GetString(3),
        FirmwareVersion = reader.IsDBNull(4) ? null : reader.GetString(4),
        Status = ParseStatus(reader.GetString(5)),
        Location = reader.IsDBNull(6) ? null : reader.GetString(6),
        LastSeen = reader.IsDBNull(7) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
        RegisteredAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
        Metadata = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(9)) ?? [],
        CertificateFingerprint = reader.IsDBNull(10) ? null : reader.GetString(10),
    };

    private static string ToText(DeviceType type) => type switch
    {
        DeviceType.Sensor => "sensor",
        DeviceType.Actuator => "actuator",
        DeviceType.Gateway => "gateway",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private static string ToText(DeviceStatus status) => status switch
    {
        DeviceStatus.Online => "online",
        DeviceStatus.Offline => "offline",
        DeviceStatus.Maintenance => "maintenance",
        DeviceStatus.Error => "error",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    private static DeviceType ParseType(string text) => text switch
    {
        "sensor" => DeviceType.Sensor,
        "actuator" => DeviceType.Actuator,
        "gateway" => DeviceType.Gateway,
        _ => throw new InvalidDataException($"Unknown device type '{text}' in the registry."),
    };

    private static DeviceStatus ParseStatus(string text) => text switch
    {
        "online" => DeviceStatus.Online,
        "offline" => DeviceStatus.Offline,
        "maintenance" => DeviceStatus.Maintenance,
        "error" => DeviceStatus.Error,
        _ => throw new InvalidDataException($"Unknown device status '{text}' in the registry."),
    };
}
