using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fieldline.Core.Shadows;

/// <summary>
/// A shadow update as the API and the device topics take it:
/// <c>{"state":{"desired":{...},"reported":{...}},"version":3,"clientToken":"..."}</c>. A section may be null to
/// empty it; <c>version</c> (optional) is the version the update was based on; <c>clientToken</c> (optional) is
/// echoed in the answer on the device topics.
/// </summary>
/// <param name="Update">The sections to change.</param>
/// <param name="Version">The version the update names, if any.</param>
/// <param name="ClientToken">The caller's token, if any.</param>
public sealed record ShadowUpdateRequest(ShadowUpdate Update, long? Version, string? ClientToken)
{
    /// <summary>Longest client token kept, in characters (as AWS IoT's 64 bytes).</summary>
    public const int MaximumClientTokenLength = 64;

    /// <summary>Reads a request; returns the errors by field (JSON path), or null with the request.</summary>
    public static Dictionary<string, string[]>? Parse(JsonNode? body, out ShadowUpdateRequest? request)
    {
        request = null;
        var errors = new Dictionary<string, string[]>();
        if (body is not JsonObject root)
        {
            errors["body"] = ["must be a JSON object such as {\"state\":{\"desired\":{...}}}"];
            return errors;
        }

        long? version = null;
        if (root["version"] is { } versionNode)
        {
            if (versionNode.GetValueKind() == JsonValueKind.Number && versionNode.AsValue().TryGetValue<long>(out var named) && named >= 0)
            {
                version = named;
            }
            else
            {
                errors["version"] = ["must be a whole number, the version the update was based on"];
            }
        }

        string? clientToken = null;
        if (root["clientToken"] is { } tokenNode)
        {
            if (tokenNode.GetValueKind() == JsonValueKind.String && tokenNode.GetValue<string>() is { Length: > 0 and <= MaximumClientTokenLength } token)
            {
                clientToken = token;
            }
            else
            {
                errors["clientToken"] = [$"must be a string of 1 to {MaximumClientTokenLength} characters"];
            }
        }

        if (root["state"] is not JsonObject state)
        {
            errors["state"] = ["must be an object with desired and/or reported"];
            return errors;
        }

        var desired = Section(state, "desired", errors, out var clearDesired);
        var reported = Section(state, "reported", errors, out var clearReported);
        foreach (var (key, _) in state)
        {
            if (key is not ("desired" or "reported"))
            {
                errors[$"state.{key}"] = ["is not a section of a shadow; only desired and reported are"];
            }
        }

        if (errors.Count > 0)
        {
            return errors;
        }

        request = new ShadowUpdateRequest(new ShadowUpdate(desired, reported, clearDesired, clearReported), version, clientToken);
        return null;
    }

    private static JsonObject? Section(JsonObject state, string name, Dictionary<string, string[]> errors, out bool clear)
    {
        clear = false;
        if (!state.TryGetPropertyValue(name, out var node))
        {
            return null;
        }

        if (node is null)
        {
            clear = true;
            return null;
        }

        if (node is JsonObject section)
        {
            return section;
        }

        errors[$"state.{name}"] = ["must be an object (or null to empty it)"];
        return null;
    }
}
