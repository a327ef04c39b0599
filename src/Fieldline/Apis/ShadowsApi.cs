using System.Globalization;
using System.Text.Json.Nodes;
using Fieldline.Core.Shadows;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Fieldline.Apis;

/// <summary>
/// /api/v1/devices/{id}/shadow: the device shadow. GET reads it (ETag: its version); PATCH merges
/// <c>{"state":{"desired":{...}}}</c> (a null value removes a key; <c>"desired": null</c> empties desired) and may name
/// the version it read (If-Match, or a <c>"version"</c> field) to get 409 when it is stale; DELETE resets it. The
/// reported section is the device's: PATCH may write it only with <c>?admin_override=true</c>.
/// </summary>
internal static class ShadowsApi
{
    public static RouteGroupBuilder MapShadowsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices/{deviceId}/shadow").WithTags("Shadows");
        api.MapGet("/", GetShadow);
        api.MapPatch("/", PatchShadow);
        api.MapDelete("/", DeleteShadow);
        return api;
    }

    private static async Task<Results<ContentHttpResult, ProblemHttpResult>> GetShadow(
        string deviceId, ShadowService shadows, HttpContext context, CancellationToken cancellationToken)
    {
        var outcome = await shadows.GetAsync(deviceId, cancellationToken);
        return outcome.Succeeded ? Document(context, outcome.Shadow!) : Problem(outcome);
    }

    private static async Task<Results<ContentHttpResult, ProblemHttpResult, ValidationProblem>> PatchShadow(
        string deviceId,
        ShadowService shadows,
        HttpContext context,
        [FromQuery(Name = "admin_override")] bool? adminOverride,
        CancellationToken cancellationToken)
    {
        var (body, invalid) = await ApiJson.ReadBodyAsync(context.Request, cancellationToken);
        if (invalid is not null)
        {
            return invalid;
        }

        if (ParseUpdate(body, context.Request.Headers.IfMatch.ToString(), out var update, out var version) is { } errors)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var writer = adminOverride == true ? ShadowWriter.AdminOverride : ShadowWriter.Operator;
        var outcome = await shadows.UpdateAsync(deviceId, update!, writer, version, cancellationToken);
        return outcome.Succeeded ? Document(context, outcome.Shadow!) : Problem(outcome);
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> DeleteShadow(
        string deviceId, ShadowService shadows, HttpContext context, CancellationToken cancellationToken)
    {
        long? version = null;
        if (context.Request.Headers.IfMatch.ToString() is { Length: > 0 } ifMatch)
        {
            if (ParseETag(ifMatch) is not { } parsed)
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["If-Match"] = ["must be the shadow's version as an ETag, such as \"3\""] });
            }

            version = parsed;
        }

        var outcome = await shadows.DeleteAsync(deviceId, version, cancellationToken);
        return outcome.Succeeded ? TypedResults.NoContent() : Problem(outcome);
    }

    /// <summary>Reads a PATCH body and its If-Match header; returns the errors by field, or null with the update and the version it names.</summary>
    internal static Dictionary<string, string[]>? ParseUpdate(JsonNode? body, string ifMatch, out ShadowUpdate? update, out long? version)
    {
        var errors = ShadowUpdateRequest.Parse(body, out var request) ?? [];
        update = request?.Update;
        version = request?.Version;
        if (ifMatch.Length > 0)
        {
            if (ParseETag(ifMatch) is { } fromHeader && (version is null || version == fromHeader))
            {
                version = fromHeader;
            }
            else
            {
                errors["If-Match"] = ["must be the shadow's version as an ETag, such as \"3\", and agree with the version field"];
            }
        }

        return errors.Count > 0 ? errors : null;
    }

    private static long? ParseETag(string value)
    {
        var text = value.Trim();
        if (text.StartsWith("W/", StringComparison.Ordinal))
        {
            text = text[2..];
        }

        text = text.Trim('"');
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
    }

    private static ContentHttpResult Document(HttpContext context, DeviceShadow shadow)
    {
        context.Response.Headers.ETag = $"\"{shadow.Version.ToString(CultureInfo.InvariantCulture)}\"";
        return TypedResults.Text(shadow.ToDocument().ToJsonString(), "application/json", statusCode: StatusCodes.Status200OK);
    }

    private static ProblemHttpResult Problem(ShadowOutcome outcome) => outcome.Status switch
    {
        ShadowStatus.DeviceNotFound => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Device not found", detail: outcome.Message),
        ShadowStatus.VersionConflict => TypedResults.Problem(
            statusCode: StatusCodes.Status409Conflict,
            title: "Shadow version conflict",
            detail: outcome.Message,
            extensions: new Dictionary<string, object?> { ["current_version"] = outcome.Shadow?.Version }),
        ShadowStatus.Forbidden => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Reported state is the device's", detail: outcome.Message),
        ShadowStatus.TooLarge => TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Shadow too large", detail: outcome.Message),
        _ => TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid shadow update", detail: outcome.Message),
    };
}
