using System.Collections.Frozen;
using System.Text.Json;

namespace Fieldline.Apis;

/// <summary>
/// The wire names of an enum (snake_case, as the JSON converter writes them) and a strict parser that,
/// unlike <see cref="Enum.TryParse{TEnum}(string?, out TEnum)"/>, rejects numbers and unknown names.
/// </summary>
internal static class WireEnum<TEnum>
    where TEnum : struct, Enum
{
    private static readonly FrozenDictionary<TEnum, string> s_names =
        Enum.GetValues<TEnum>().ToFrozenDictionary(v => v, v => JsonNamingPolicy.SnakeCaseLower.ConvertName(v.ToString()));

    private static readonly FrozenDictionary<string, TEnum> s_values =
        s_names.ToFrozenDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase);

    /// <summary>For error messages: "sensor, actuator, gateway".</summary>
    public static string Choices { get; } = string.Join(", ", Enum.GetValues<TEnum>().Select(v => s_names[v]));

    public static string Name(TEnum value) => s_names[value];

    public static bool TryParse(string? text, out TEnum value) => s_values.TryGetValue(text ?? string.Empty, out value);
}
