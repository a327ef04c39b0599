using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fieldline.Apis;

/// <summary>The JSON conventions of the API: snake_case names and enums, UTC ISO 8601 timestamps.</summary>
internal static class ApiJson
{
    public static void Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        options.Converters.Add(new UtcDateTimeOffsetConverter());
    }

    /// <summary>Parses a request body as JSON; a body that is not JSON gives the 400 to return instead.</summary>
    public static async Task<(JsonNode? Body, ValidationProblem? Invalid)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return (await JsonNode.ParseAsync(request.Body, cancellationToken: cancellationToken), null);
        }
        catch (JsonException e)
        {
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = [$"is not valid JSON: {e.Message}"] }));
        }
    }

    /// <summary>Writes <c>2025-03-01T12:00:00Z</c> rather than an offset, whatever offset the value carries.</summary>
    private sealed class UtcDateTimeOffsetConverter : JsonConverter<DateTimeOffset>
    {
        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetDateTimeOffset();

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.UtcDateTime);
    }
}
