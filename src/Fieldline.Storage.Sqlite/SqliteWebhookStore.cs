using Fieldline.Core.Webhooks;
using Microsoft.Data.Sqlite;

namespace Fieldline.Storage.Sqlite;

/// <summary><see cref="IWebhookStore"/> on the <c>webhooks</c> table of the registry database.</summary>
public sealed class SqliteWebhookStore : IWebhookStore
{
    private readonly SqliteRegistryDatabase _database;

    public SqliteWebhookStore(SqliteRegistryDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    public async Task CreateAsync(WebhookSubscription webhook, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(webhook);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO webhooks (id, url, event_types, device_id, secret, created_at) VALUES ($id, $url, $types, $device, $secret, $created)";
        insert.Parameters.AddWithValue("$id", webhook.Id);
        insert.Parameters.AddWithValue("$url", webhook.Url.ToString());
        insert.Parameters.AddWithValue("$types", string.Join(',', webhook.EventTypes.Order(StringComparer.Ordinal)));
        insert.Parameters.AddWithValue("$device", (object?)webhook.DeviceId ?? DBNull.Value);
        insert.Parameters.AddWithValue("$secret", webhook.ProtectedSecret);
        insert.Parameters.AddWithValue("$created", webhook.CreatedAt.ToUnixTimeMilliseconds());
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<WebhookSubscription?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT id, url, event_types, device_id, secret, created_at FROM webhooks WHERE id = $id";
        select.Parameters.AddWithValue("$id", id);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    public async Task<IReadOnlyList<WebhookSubscription>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT id, url, event_types, device_id, secret, created_at FROM webhooks ORDER BY created_at, id";
        var webhooks = new List<WebhookSubscription>();
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            webhooks.Add(Read(reader));
        }

        return webhooks;
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        await using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM webhooks WHERE id = $id";
        delete.Parameters.AddWithValue("$id", id);
        return await delete.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private static WebhookSubscription Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        new Uri(reader.GetString(1)),
        reader.GetString(2).Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.GetString(4),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)));
}
