using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fieldline.Core;
using Fieldline.Core.Commands;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Fieldline.Apis;

/// <summary>
/// /api/v1/devices/{id}/commands: commands to a device. POST <c>{"type","parameters","timeout_s","expires_in_s"}</c>
/// creates one (sent at once when the device is subscribed, otherwise when it next subscribes, until it expires);
/// GET lists a device's commands newest first (paged); GET /{command_id} reads one, and with <c>?wait=true</c> waits
/// for its outcome (long poll, at most <c>wait_s</c> seconds, 30 by default).
/// </summary>
internal static class CommandsApi
{
    public const int DefaultTimeoutSeconds = 30;
    public const int DefaultExpirySeconds = 3600;
    public const int MaximumWaitSeconds = 300;
    public const int MaximumTypeLength = 128;
    public const int MaximumParametersBytes = 16 * 1024;

    public static RouteGroupBuilder MapCommandsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices/{deviceId}/commands").WithTags("Commands");
        api.MapPost("/", CreateCommand);
        api.MapGet("/", ListCommands);
        api.MapGet("/{commandId}", GetCommand);
        return api;
    }

    private static async Task<Results<ContentHttpResult, ValidationProblem, ProblemHttpResult>> CreateCommand(
        string deviceId, CommandService commands, HttpContext context, CancellationToken cancellationToken)
    {
        var (body, invalid) = await ApiJson.ReadBodyAsync(context.Request, cancellationToken);
        if (invalid is not null)
        {
            return invalid;
        }

        var errors = new Dictionary<string, string[]>();
        if (body is not JsonObject request)
        {
            errors["body"] = ["must be a JSON object such as {\"type\":\"restart\",\"parameters\":{}}"];
            return TypedResults.ValidationProblem(errors);
        }

        var type = request["type"] is JsonValue t && t.TryGetValue<string>(out var text) ? text : null;
        if (type is null || type.Length is 0 or > MaximumTypeLength)
        {
            errors["type"] = [$"is required: a string of 1 to {MaximumTypeLength} characters"];
        }

        JsonObject? parameters = null;
        if (request["parameters"] is { } node)
        {
            parameters = node as JsonObject;
            if (parameters is null)
            {
                errors["parameters"] = ["must be an object"];
            }
            else if (parameters.ToJsonString().Length > MaximumParametersBytes)
            {
                errors["parameters"] = [$"must be at most {MaximumParametersBytes} bytes of JSON"];
            }
        }

        var timeout = Seconds(request, "timeout_s", DefaultTimeoutSeconds, CommandService.MaximumTimeout, errors);
        var expiresIn = Seconds(request, "expires_in_s", DefaultExpirySeconds, CommandService.MaximumExpiry, errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var outcome = await commands.CreateAsync(deviceId, type!, (JsonObject?)parameters?.DeepClone(), timeout, expiresIn, cancellationToken);
        if (outcome.Status == CommandStatus.DeviceNotFound)
        {
            return DevicesApi.DeviceNotFound(deviceId);
        }

        context.Response.Headers.Location = $"/api/v1/devices/{Uri.EscapeDataString(deviceId)}/commands/{outcome.Command!.CommandId}";
        return TypedResults.Text(ToJson(outcome.Command).ToJsonString(), "application/json", statusCode: StatusCodes.Status201Created);
    }

    private static async Task<Results<ContentHttpResult, ProblemHttpResult, ValidationProblem>> GetCommand(
        string deviceId,
        string commandId,
        CommandService commands,
        [FromQuery] bool? wait,
        [FromQuery(Name = "wait_s")] int? waitSeconds,
        CancellationToken cancellationToken)
    {
        if (waitSeconds is < 1 or > MaximumWaitSeconds)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["wait_s"] = [$"must be between 1 and {MaximumWaitSeconds}"] });
        }

        var outcome = wait == true
            ? await commands.WaitAsync(deviceId, commandId, TimeSpan.FromSeconds(waitSeconds ?? 30), cancellationToken)
            : await commands.GetAsync(deviceId, commandId, cancellationToken);
        return outcome.Command is { } command
            ? TypedResults.Text(ToJson(command).ToJsonString(), "application/json", statusCode: StatusCodes.Status200OK)
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Command not found", detail: outcome.Message);
    }

    private static async Task<Results<ContentHttpResult, ValidationProblem>> ListCommands(
        string deviceId, CommandService commands, [FromQuery] int? limit, [FromQuery] string? cursor, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > DevicesApi.MaximumPageSize)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"must be between 1 and {DevicesApi.MaximumPageSize}"] });
        }

        var page = await commands.ListAsync(deviceId, limit ?? DevicesApi.DefaultPageSize, cursor, cancellationToken);
        var items = new JsonArray([.. page.Commands.Select(c => (JsonNode)ToJson(c))]);
        return TypedResults.Text(new JsonObject { ["items"] = items, ["next_cursor"] = page.NextCursor }.ToJsonString(), "application/json", statusCode: StatusCodes.Status200OK);
    }

    private static TimeSpan Seconds(JsonObject request, string name, int fallback, TimeSpan maximum, Dictionary<string, string[]> errors)
    {
        if (request[name] is not { } node)
        {
            return TimeSpan.FromSeconds(fallback);
        }

        if (node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue<double>(out var seconds) && seconds > 0 && seconds <= maximum.TotalSeconds)
        {
            return TimeSpan.FromSeconds(seconds);
        }

        errors[name] = [$"must be a number of seconds above 0 and at most {maximum.TotalSeconds.ToString(CultureInfo.InvariantCulture)}"];
        return TimeSpan.Zero;
    }

    private static JsonObject ToJson(DeviceCommand command) => new()
    {
        ["command_id"] = command.CommandId,
        ["device_id"] = command.DeviceId,
        ["type"] = command.Type,
        ["parameters"] = command.Parameters.DeepClone(),
        ["state"] = WireNames.Name(command.State),
        ["created_at"] = Iso(command.CreatedAt),
        ["expires_at"] = Iso(command.ExpiresAt),
        ["timeout_s"] = command.Timeout.TotalSeconds,
        ["delivered_at"] = command.DeliveredAt is { } delivered ? Iso(delivered) : null,
        ["completed_at"] = command.CompletedAt is { } completed ? Iso(completed) : null,
        ["message"] = command.Message,
    };

    // As ApiJson writes a DateTimeOffset everywhere else in the API: ISO 8601 in UTC.
    private static JsonValue Iso(DateTimeOffset value) => JsonValue.Create(value.UtcDateTime);
}
