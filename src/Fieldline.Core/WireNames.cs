using System.Collections.Frozen;
using System.Text.Json;

namespace Fieldline.Core;

/// <summary>
/// The wire names of enums (snake_case, as the JSON converter writes them: <c>timed_out</c>, <c>admin_override</c>)
/// and a strict parser that, unlike <see cref="Enum.TryParse{TEnum}(string?, out TEnum)"/>, rejects numbers and
/// unknown names. The names of each enum are computed once.
/// </summary>
public static class WireNames
{
    /// <summary>The wire name of <paramref name="value"/>.</summary>
    public static string Name<TEnum>(TEnum value)
        where TEnum : struct, Enum => Cache<TEnum>.Names[value];

    /// <summary>Parses a wire name (case-insensitive); false for numbers and unknown names.</summary>
    public static bool TryParse<TEnum>(string? text, out TEnum value)
        where TEnum : struct, Enum => Cache<TEnum>.Values.TryGetValue(text ?? string.Empty, out value);

    /// <summary>For error messages: "sensor, actuator, gateway".</summary>
    public static string Choices<TEnum>()
        where TEnum : struct, Enum => Cache<TEnum>.Choices;

    private static class Cache<TEnum>
        where TEnum : struct, Enum
    {
        public static readonly FrozenDictionary<TEnum, string> Names =
            Enum.GetValues<TEnum>().ToFrozenDictionary(v => v, v => JsonNamingPolicy.SnakeCaseLower.ConvertName(v.ToString()));

        public static readonly FrozenDictionary<string, TEnum> Values =
            Names.ToFrozenDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase);

        public static readonly string Choices = string.Join(", ", Enum.GetValues<TEnum>().Select(v => Names[v]));
    }
}
