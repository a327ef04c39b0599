namespace Fieldline.Core.Webhooks;

/// <summary>
/// An outgoing webhook: events matching <see cref="EventTypes"/> (all when empty) and <see cref="DeviceId"/> (all
/// devices when null) are POSTed to <see cref="Url"/>, signed with HMAC-SHA256 under the subscription's secret.
/// </summary>
/// <param name="Id">The webhook's id.</param>
/// <param name="Url">Where events are POSTed (http or https).</param>
/// <param name="EventTypes">The event types it wants; empty for all.</param>
/// <param name="DeviceId">The one device it wants, or null for all.</param>
/// <param name="ProtectedSecret">The signing secret, encrypted by the host (never stored in the clear, never logged).</param>
/// <param name="CreatedAt">When it was created.</param>
public sealed record WebhookSubscription(string Id, Uri Url, IReadOnlySet<string> EventTypes, string? DeviceId, string ProtectedSecret, DateTimeOffset CreatedAt);

/// <summary>Where webhook subscriptions are kept.</summary>
public interface IWebhookStore
{
    Task CreateAsync(WebhookSubscription webhook, CancellationToken cancellationToken);

    Task<WebhookSubscription?> GetAsync(string id, CancellationToken cancellationToken);

    Task<IReadOnlyList<WebhookSubscription>> ListAsync(CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);
}
