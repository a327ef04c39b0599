using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fieldline.Core.Devices;
using Fieldline.Core.ServiceAccounts;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// <see cref="IServiceAccountStore"/> on SQLite, in the registry database next to the devices, so that one
/// trigger per table keeps device ids and user names apart atomically.
/// </summary>
public sealed class SqliteServiceAccountStore : IServiceAccountStore
{
    private const string SelectAccount = "SELECT username, description, rules, created_at, updated_at FROM service_accounts";

    private readonly SqliteRegistryDatabase _database;

    public SqliteServiceAccountStore(SqliteRegistryDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    public async Task<RegistryWriteResult> CreateAsync(ServiceAccount account, PasswordHash password, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        ArgumentNullException.ThrowIfNull(password);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = """
            INSERT INTO service_accounts (username, description, rules, password_hash, password_salt, password_iterations, created_at, updated_at)
            VALUES ($username, $description, $rules, $hash, $salt, $iterations, $created_at, $updated_at)
            """;
        AddAccountParameters(insert, account);
        AddPasswordParameters(insert, password);
        insert.Parameters.AddWithValue("$created_at", account.CreatedAt.ToUnixTimeMilliseconds());
        try
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteRegistryDatabase.SqliteConstraintPrimaryKey)
        {
            return RegistryWriteResult.Conflict;
        }
        catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteRegistryDatabase.SqliteConstraintTrigger)
        {
            return RegistryWriteResult.NameTaken;
        }

        return RegistryWriteResult.Ok;
    }

    public async Task<ServiceAccount?> GetAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = SelectAccount + " WHERE username = $username";
        select.Parameters.AddWithValue("$username", username);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadAccount(reader) : null;
    }

    public async Task<ServiceAccountPage> ListAsync(int limit, string? after, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 1000);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = SelectAccount + (after is null ? string.Empty : " WHERE username > $after") + " ORDER BY username LIMIT $limit";
        if (after is not null)
        {
            select.Parameters.AddWithValue("$after", after);
        }

        // One row more than asked tells whether there is a next page.
        select.Parameters.AddWithValue("$limit", limit + 1);
        var items = new List<ServiceAccount>();
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                items.Add(ReadAccount(reader));
            }
        }

        if (items.Count <= limit)
        {
            return new ServiceAccountPage(items, NextCursor: null);
        }

        items.RemoveAt(items.Count - 1);
        return new ServiceAccountPage(items, items[^1].Username);
    }

    public async Task<RegistryWriteResult> UpdateAsync(ServiceAccount account, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var update = connection.CreateCommand();
        update.CommandText = "UPDATE service_accounts SET description = $description, rules = $rules, updated_at = $updated_at WHERE username = $username";
        AddAccountParameters(update, account);
        return await update.ExecuteNonQueryAsync(cancellationToken) == 0 ? RegistryWriteResult.NotFound : RegistryWriteResult.Ok;
    }

    public async Task<RegistryWriteResult> SetPasswordAsync(string username, PasswordHash password, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(password);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var update = connection.CreateCommand();
        update.CommandText = """
            UPDATE service_accounts
            SET password_hash = $hash, password_salt = $salt, password_iterations = $iterations, updated_at = $updated_at
            WHERE username = $username
            """;
        update.Parameters.AddWithValue("$username", username);
        update.Parameters.AddWithValue("$updated_at", at.ToUnixTimeMilliseconds());
        AddPasswordParameters(update, password);
        return await update.ExecuteNonQueryAsync(cancellationToken) == 0 ? RegistryWriteResult.NotFound : RegistryWriteResult.Ok;
    }

    public async Task<RegistryWriteResult> DeleteAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM service_accounts WHERE username = $username";
        delete.Parameters.AddWithValue("$username", username);
        return await delete.ExecuteNonQueryAsync(cancellationToken) == 0 ? RegistryWriteResult.NotFound : RegistryWriteResult.Ok;
    }

    public async Task<ServiceAccountCredentials?> GetCredentialsAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = """
            SELECT username, description, rules, created_at, updated_at, password_hash, password_salt, password_iterations
            FROM service_accounts WHERE username = $username
            """;
        select.Parameters.AddWithValue("$username", username);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var password = new PasswordHash((byte[])reader.GetValue(6), (byte[])reader.GetValue(5), reader.GetInt32(7));
        return new ServiceAccountCredentials(ReadAccount(reader), password);
    }

    private static void AddAccountParameters(SqliteCommand command, ServiceAccount account)
    {
        command.Parameters.AddWithValue("$username", account.Username);
        command.Parameters.AddWithValue("$description", (object?)account.Description ?? DBNull.Value);
        command.Parameters.AddWithValue("$rules", JsonSerializer.Serialize(account.Rules.Select(r => new StoredRule(ToText(r.Action), r.Pattern))));
        command.Parameters.AddWithValue("$updated_at", account.UpdatedAt.ToUnixTimeMilliseconds());
    }

    private static void AddPasswordParameters(SqliteCommand command, PasswordHash password)
    {
        command.Parameters.AddWithValue("$hash", password.Hash);
        command.Parameters.AddWithValue("$salt", password.Salt);
        command.Parameters.AddWithValue("$iterations", password.Iterations);
    }

    private static ServiceAccount ReadAccount(DbDataReader reader) => new()
    {
        Username = reader.GetString(0),
        Description = reader.IsDBNull(1) ? null : reader.GetString(1),
        Rules = [.. (JsonSerializer.Deserialize<List<StoredRule>>(reader.GetString(2)) ?? []).Select(r => new TopicRule(ParseAction(r.Action), r.Pattern))],
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
        UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
    };

    private static string ToText(TopicAction action) => action switch
    {
        TopicAction.Publish => "publish",
        TopicAction.Subscribe => "subscribe",
        TopicAction.All => "all",
        _ => throw new ArgumentOutOfRangeException(nameof(action), action, null),
    };

    private static TopicAction ParseAction(string text) => text switch
    {
        "publish" => TopicAction.Publish,
        "subscribe" => TopicAction.Subscribe,
        "all" => TopicAction.All,
        _ => throw new InvalidDataException($"Unknown topic rule action '{text}' in the registry."),
    };

    /// <summary>A rule as the <c>rules</c> column holds it (a JSON array of these).</summary>
    private sealed record StoredRule([property: JsonPropertyName("action")] string Action, [property: JsonPropertyName("pattern")] string Pattern);
}
