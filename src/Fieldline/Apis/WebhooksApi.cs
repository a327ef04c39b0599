using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Fieldline.Core.Events;
using Fieldline.Core.Webhooks;
using Fieldline.Webhooks;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fieldline.Apis;

/// <summary>
/// /api/v1/webhooks: outgoing webhooks. POST <c>{"url","event_types":[...],"device_id","secret"}</c> creates one and
/// returns its secret once (generated when not given); GET lists them with their delivery figures (delivered,
/// failed, dropped, last status and error, circuit state); DELETE removes one.
/// </summary>
internal static class WebhooksApi
{
    public const int MinimumSecretLength = 16;

    public static RouteGroupBuilder MapWebhooksApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/webhooks").WithTags("Webhooks");
        api.MapPost("/", CreateWebhook);
        api.MapGet("/", ListWebhooks);
        api.MapGet("/{id}", GetWebhook);
        api.MapDelete("/{id}", DeleteWebhook);
        return api;
    }

    private static async Task<Results<ContentHttpResult, ValidationProblem>> CreateWebhook(
        HttpContext context, IWebhookStore store, WebhookDispatcher dispatcher, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        var (body, invalid) = await ApiJson.ReadBodyAsync(context.Request, cancellationToken);
        if (invalid is not null)
        {
            return invalid;
        }

        var errors = new Dictionary<string, string[]>();
        if (body is not JsonObject request)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["must be a JSON object such as {\"url\":\"https://...\"}"] });
        }

        Uri? url = null;
        if (request["url"] is not JsonValue urlValue || !urlValue.TryGetValue<string>(out var urlText)
            || !Uri.TryCreate(urlText, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https"))
        {
            errors["url"] = ["is required: an absolute http or https URL"];
        }

        var types = new HashSet<string>(StringComparer.Ordinal);
        if (request["event_types"] is { } typesNode)
        {
            if (typesNode is not JsonArray array || array.Any(t => t is not JsonValue v || !v.TryGetValue<string>(out var name) || !EventTypes.All.Contains(name)))
            {
                errors["event_types"] = [$"must be an array of event types: {string.Join(", ", EventTypes.All)}"];
            }
            else
            {
                types.UnionWith(array.Select(t => t!.GetValue<string>()));
            }
        }

        var deviceId = request["device_id"] is JsonValue d && d.TryGetValue<string>(out var device) ? device : null;
        var secret = RandomNumberGenerator.GetHexString(32, lowercase: true);
        if (request["secret"] is { } secretNode)
        {
            if (secretNode is JsonValue s && s.TryGetValue<string>(out var given) && given.Length is >= MinimumSecretLength and <= 256)
            {
                secret = given;
            }
            else
            {
                errors["secret"] = [$"must be a string of {MinimumSecretLength} to 256 characters"];
            }
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var webhook = new WebhookSubscription("wh-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), url!, types, deviceId, dispatcher.Protect(secret), timeProvider.GetUtcNow());
        await store.CreateAsync(webhook, cancellationToken);
        dispatcher.Add(webhook);
        var json = ToJson(webhook, dispatcher.StatusOf(webhook.Id));
        json["secret"] = secret;
        context.Response.Headers.Location = $"/api/v1/webhooks/{webhook.Id}";
        return TypedResults.Text(json.ToJsonString(), "application/json", statusCode: StatusCodes.Status201Created);
    }

    private static async Task<ContentHttpResult> ListWebhooks(IWebhookStore store, WebhookDispatcher dispatcher, CancellationToken cancellationToken)
    {
        var items = new JsonArray([.. (await store.ListAsync(cancellationToken)).Select(w => (JsonNode)ToJson(w, dispatcher.StatusOf(w.Id)))]);
        return TypedResults.Text(new JsonObject { ["items"] = items }.ToJsonString(), "application/json", statusCode: StatusCodes.Status200OK);
    }

    private static async Task<Results<ContentHttpResult, ProblemHttpResult>> GetWebhook(string id, IWebhookStore store, WebhookDispatcher dispatcher, CancellationToken cancellationToken) =>
        await store.GetAsync(id, cancellationToken) is { } webhook
            ? TypedResults.Text(ToJson(webhook, dispatcher.StatusOf(id)).ToJsonString(), "application/json", statusCode: StatusCodes.Status200OK)
            : NotFound(id);

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteWebhook(string id, IWebhookStore store, WebhookDispatcher dispatcher, CancellationToken cancellationToken)
    {
        if (!await store.DeleteAsync(id, cancellationToken))
        {
            return NotFound(id);
        }

        dispatcher.Remove(id);
        return TypedResults.NoContent();
    }

    private static ProblemHttpResult NotFound(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Webhook not found", detail: $"No webhook has the id '{id}'.");

    private static JsonObject ToJson(WebhookSubscription webhook, WebhookDeliveryStatus? status) => new()
    {
        ["id"] = webhook.Id,
        ["url"] = webhook.Url.ToString(),
        ["event_types"] = new JsonArray([.. webhook.EventTypes.Order(StringComparer.Ordinal).Select(t => (JsonNode)t)]),
        ["device_id"] = webhook.DeviceId,
        ["created_at"] = webhook.CreatedAt.UtcDateTime,
        ["deliveries"] = new JsonObject
        {
            ["delivered"] = status?.Delivered ?? 0,
            ["failed"] = status?.Failed ?? 0,
            ["dropped"] = status?.Dropped ?? 0,
            ["last_status"] = status?.LastStatusCode,
            ["last_error"] = status?.LastError,
            ["circuit"] = status?.CircuitState ?? "closed",
        },
    };
}
