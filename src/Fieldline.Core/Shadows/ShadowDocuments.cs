using System.Text.Json.Nodes;

namespace Fieldline.Core.Shadows;

/// <summary>The JSON operations of a shadow: merging an update into a section and computing the delta.</summary>
public static class ShadowDocuments
{
    /// <summary>
    /// Merges <paramref name="patch"/> into <paramref name="section"/> (desired or reported) as AWS IoT and JSON Merge
    /// Patch (RFC 7386) do: a null removes the key, an object merges into an object, anything else replaces. Every
    /// value written gets <paramref name="timestamp"/> in <paramref name="metadata"/>, which mirrors the section's
    /// shape with <c>{"timestamp": seconds}</c> at its leaves. Returns whether anything changed.
    /// </summary>
    public static bool Merge(JsonObject section, JsonObject metadata, JsonObject patch, long timestamp)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(patch);
        var changed = false;
        foreach (var (key, value) in patch)
        {
            if (value is null)
            {
                changed |= section.Remove(key);
                metadata.Remove(key);
                continue;
            }

            if (value is JsonObject patchObject && section[key] is JsonObject existing)
            {
                var nestedMetadata = metadata[key] as JsonObject ?? ReplaceWithObject(metadata, key);
                changed |= Merge(existing, nestedMetadata, patchObject, timestamp);
                continue;
            }

            var written = WithoutNulls(value);
            if (!JsonNode.DeepEquals(section[key], written))
            {
                section[key] = written;
                changed = true;
            }

            metadata[key] = MetadataOf(written, timestamp);
        }

        return changed;
    }

    /// <summary>
    /// The keys of <paramref name="desired"/> whose value differs from <paramref name="reported"/>, at any depth:
    /// for two objects under the same key only the differing keys inside them, otherwise the desired value.
    /// </summary>
    public static JsonObject ComputeDelta(JsonObject desired, JsonObject reported)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(reported);
        var delta = new JsonObject();
        foreach (var (key, desiredValue) in desired)
        {
            var reportedValue = reported[key];
            if (desiredValue is JsonObject desiredObject && reportedValue is JsonObject reportedObject)
            {
                var nested = ComputeDelta(desiredObject, reportedObject);
                if (nested.Count > 0)
                {
                    delta[key] = nested;
                }
            }
            else if (!reported.ContainsKey(key) || !JsonNode.DeepEquals(desiredValue, reportedValue))
            {
                delta[key] = desiredValue?.DeepClone();
            }
        }

        return delta;
    }

    /// <summary>How deep <paramref name="node"/> nests objects and arrays (a scalar is 0, <c>{"a":1}</c> is 1).</summary>
    public static int Depth(JsonNode? node) => node switch
    {
        JsonObject obj => 1 + obj.Select(p => Depth(p.Value)).DefaultIfEmpty(0).Max(),
        JsonArray array => 1 + array.Select(Depth).DefaultIfEmpty(0).Max(),
        _ => 0,
    };

    /// <summary>How many object keys <paramref name="node"/> holds at all depths.</summary>
    public static int KeyCount(JsonNode? node) => node switch
    {
        JsonObject obj => obj.Count + obj.Sum(p => KeyCount(p.Value)),
        JsonArray array => array.Sum(KeyCount),
        _ => 0,
    };

    private static JsonObject ReplaceWithObject(JsonObject metadata, string key)
    {
        var created = new JsonObject();
        metadata[key] = created;
        return created;
    }

    // A value written whole (a new key, or replacing a scalar) keeps no nulls: null means "remove", never a value.
    private static JsonNode WithoutNulls(JsonNode value)
    {
        if (value is not JsonObject obj)
        {
            return value.DeepClone();
        }

        var copy = new JsonObject();
        foreach (var (key, child) in obj)
        {
            if (child is not null)
            {
                copy[key] = WithoutNulls(child);
            }
        }

        return copy;
    }

    private static JsonObject MetadataOf(JsonNode value, long timestamp)
    {
        if (value is JsonObject obj)
        {
            var nested = new JsonObject();
            foreach (var (key, child) in obj)
            {
                nested[key] = MetadataOf(child!, timestamp);
            }

            return nested;
        }

        return new JsonObject { ["timestamp"] = timestamp };
    }
}
