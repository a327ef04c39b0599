using System.Globalization;
using System.Text.Json.Nodes;
using Fieldline.Core.Commands;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// <see cref="ICommandStore"/> on the <c>commands</c> table of the registry database. Each command keeps its
/// current deadline (expiry while pending, response timeout once delivered) in an indexed column, so that overdue
/// commands are found without a scan; a command's state changes only from the state its writer read.
/// </summary>
public sealed class SqliteCommandStore : ICommandStore
{
    private const string Columns = "seq, command_id, device_id, type, parameters, state, created_at, expires_at, timeout_ms, delivered_at, completed_at, message";

    private readonly SqliteRegistryDatabase _database;

    public SqliteCommandStore(SqliteRegistryDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    public async Task CreateAsync(DeviceCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = """
            INSERT INTO commands (command_id, device_id, type, parameters, state, created_at, expires_at, timeout_ms, delivered_at, completed_at, deadline, message)
            VALUES ($id, $device, $type, $parameters, $state, $created, $expires, $timeout, $delivered, $completed, $deadline, $message)
            """;
        Bind(insert, command);
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<DeviceCommand?> GetAsync(string commandId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = $"SELECT {Columns} FROM commands WHERE command_id = $id";
        select.Parameters.AddWithValue("$id", commandId);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    public async Task<bool> TransitionAsync(DeviceCommand command, CommandState expected, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var update = connection.CreateCommand();
        update.CommandText = """
            UPDATE commands SET state = $state, delivered_at = $delivered, completed_at = $completed, deadline = $deadline, message = $message
            WHERE command_id = $id AND state = $expected
            """;
        Bind(update, command);
        update.Parameters.AddWithValue("$expected", Name(expected));
        return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<CommandPage> ListAsync(string deviceId, int limit, string? cursor, CancellationToken cancellationToken)
    {
        var before = cursor is not null && long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : long.MaxValue;
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = $"SELECT {Columns} FROM commands WHERE device_id = $device AND seq < $before ORDER BY seq DESC LIMIT $limit";
        select.Parameters.AddWithValue("$device", deviceId);
        select.Parameters.AddWithValue("$before", before);
        select.Parameters.AddWithValue("$limit", limit + 1);
        var (commands, sequences) = await ReadAllAsync(select, cancellationToken);
        if (commands.Count <= limit)
        {
            return new CommandPage(commands, null);
        }

        commands.RemoveAt(limit);
        return new CommandPage(commands, sequences[limit - 1].ToString(CultureInfo.InvariantCulture));
    }

    public async Task<IReadOnlyList<DeviceCommand>> ListPendingAsync(string deviceId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = $"SELECT {Columns} FROM commands WHERE device_id = $device AND state = 'pending' ORDER BY seq";
        select.Parameters.AddWithValue("$device", deviceId);
        return (await ReadAllAsync(select, cancellationToken)).Commands;
    }

    public async Task<IReadOnlyList<DeviceCommand>> ListOverdueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = $"SELECT {Columns} FROM commands WHERE deadline IS NOT NULL AND deadline <= $now ORDER BY deadline LIMIT $limit";
        select.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        select.Parameters.AddWithValue("$limit", limit);
        return (await ReadAllAsync(select, cancellationToken)).Commands;
    }

    private static async Task<(List<DeviceCommand> Commands, List<long> Sequences)> ReadAllAsync(SqliteCommand select, CancellationToken cancellationToken)
    {
        var commands = new List<DeviceCommand>();
        var sequences = new List<long>();
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            sequences.Add(reader.GetInt64(0));
            commands.Add(Read(reader));
        }

        return (commands, sequences);
    }

    private static void Bind(SqliteCommand command, DeviceCommand value)
    {
        command.Parameters.AddWithValue("$id", value.CommandId);
        command.Parameters.AddWithValue("$device", value.DeviceId);
        command.Parameters.AddWithValue("$type", value.Type);
        command.Parameters.AddWithValue("$parameters", value.Parameters.ToJsonString());
        command.Parameters.AddWithValue("$state", Name(value.State));
        command.Parameters.AddWithValue("$created", value.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", value.ExpiresAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$timeout", (long)value.Timeout.TotalMilliseconds);
        command.Parameters.AddWithValue("$delivered", (object?)value.DeliveredAt?.ToUnixTimeMilliseconds() ?? DBNull.Value);
        command.Parameters.AddWithValue("$completed", (object?)value.CompletedAt?.ToUnixTimeMilliseconds() ?? DBNull.Value);
        command.Parameters.AddWithValue("$deadline", (object?)value.Deadline?.ToUnixTimeMilliseconds() ?? DBNull.Value);
        command.Parameters.AddWithValue("$message", (object?)value.Message ?? DBNull.Value);
    }

    private static DeviceCommand Read(SqliteDataReader reader) => new()
    {
        CommandId = reader.GetString(1),
        DeviceId = reader.GetString(2),
        Type = reader.GetString(3),
        Parameters = JsonNode.Parse(reader.GetString(4)) as JsonObject ?? [],
        State = Parse(reader.GetString(5)),
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)),
        ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
        Timeout = TimeSpan.FromMilliseconds(reader.GetInt64(8)),
        DeliveredAt = reader.IsDBNull(9) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(9)),
        CompletedAt = reader.IsDBNull(10) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(10)),
        Message = reader.IsDBNull(11) ? null : reader.GetString(11),
    };

    // The stored names: snake_case, as the API shows them.
    private static string Name(CommandState state) => state switch
    {
        CommandState.Pending => "pending",
        CommandState.Delivered => "delivered",
        CommandState.Succeeded => "succeeded",
        CommandState.Failed => "failed",
        CommandState.TimedOut => "timed_out",
        _ => "expired",
    };

    private static CommandState Parse(string name) => name switch
    {
        "pending" => CommandState.Pending,
        "delivered" => CommandState.Delivered,
        "succeeded" => CommandState.Succeeded,
        "failed" => CommandState.Failed,
        "timed_out" => CommandState.TimedOut,
        "expired" => CommandState.Expired,
        _ => throw new InvalidDataException($"Unknown command state '{name}'."),
    };
}
