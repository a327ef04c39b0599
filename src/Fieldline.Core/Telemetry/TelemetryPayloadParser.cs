using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Fieldline.Core.Telemetry;

/// <summary>
/// Parses the JSON payload of an MQTT message published on <c>sensor/{deviceId}/telemetry</c> into
/// <see cref="TelemetryPoint"/>s. Accepted forms (UTF-8 JSON):
/// <list type="bullet">
/// <item>a single reading <c>{"sensor_id":"s1","type":"temperature","value":21.5,"unit":"°C","location":"hall","timestamp":1732550000}</c>;</item>
/// <item>several metrics at one time <c>{"ts":1732550000123,"values":{"temperature":21.5,"humidity":40}}</c>;</item>
/// <item>a JSON array of either form, mixed.</item>
/// </list>
/// Timestamps below 100,000,000,000 are Unix seconds (fractions allowed), larger ones milliseconds; a missing
/// timestamp means server time. The payload is accepted or rejected as a whole. Thread-safe: one instance
/// serves every connection, so repeated metric names and units share one string each.
/// </summary>
public sealed class TelemetryPayloadParser
{
    // Design note: the parser runs once per MQTT message on the broker's hot path, so it reads the payload with
    // Utf8JsonReader straight from the (possibly multi-segment) receive buffer and never builds a DOM. Property
    // names are compared as UTF-8 bytes. Metric names and units are unescaped into a stack buffer and looked up
    // in a bounded cache through a span-keyed alternate lookup, so a known name costs no allocation; the only
    // per-point cost is the TelemetryPoint in the caller's list. The multi-value form may carry its timestamp
    // after the values, so those points are added with a placeholder and patched once the object ends.
    private const long SecondsThreshold = 100_000_000_000;
    private const int MaxMetricChars = 128;
    private const int MaxUnitChars = 32;

    // The longest raw JSON token that can still unescape to MaxMetricChars: \uXXXX takes 6 bytes per char.
    private const int MaxRawNameBytes = MaxMetricChars * 6;

    private readonly TelemetryPayloadParserOptions options;
    private readonly long maxFutureMs;
    private readonly ConcurrentDictionary<string, string> names = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> nameLookup;
    private int cachedNames;

    /// <summary>Creates a parser with the given limits (defaults when null).</summary>
    public TelemetryPayloadParser(TelemetryPayloadParserOptions? options = null)
    {
        this.options = options ?? new TelemetryPayloadParserOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.MaxPointsPerPayload, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(this.options.MaxDepth, 3, nameof(options));
        maxFutureMs = (long)this.options.MaxFutureSkew.TotalMilliseconds;
        nameLookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>
    /// Parses <paramref name="payload"/> and appends its points to <paramref name="output"/>.
    /// </summary>
    /// <param name="deviceId">The device id from the topic; every point gets it, and a differing <c>sensor_id</c> is rejected.</param>
    /// <param name="payload">The message payload; its size limit is checked by the caller.</param>
    /// <param name="nowMs">Server time in Unix milliseconds, used for points without a timestamp and for the future limit.</param>
    /// <param name="output">Receives the points; left unchanged when the payload is invalid.</param>
    /// <param name="error">Why the payload was rejected, naming the element and field, or null on success.</param>
    /// <returns>True when every element was valid and the points were appended.</returns>
    public bool TryParse(string deviceId, in ReadOnlySequence<byte> payload, long nowMs, List<TelemetryPoint> output, out string? error)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        ArgumentNullException.ThrowIfNull(output);
        var start = output.Count;
        error = Parse(deviceId, payload, nowMs, output, start);
        if (error is null)
        {
            return true;
        }

        output.RemoveRange(start, output.Count - start);
        return false;
    }

    private string? Parse(string deviceId, in ReadOnlySequence<byte> payload, long nowMs, List<TelemetryPoint> output, int start)
    {
        if (payload.IsEmpty)
        {
            return "payload is empty";
        }

        // Utf8JsonReader only checks UTF-8 when a string is transcoded; ignored strings (location) would slip through.
        if (!IsValidUtf8(payload))
        {
            return "payload is not valid UTF-8";
        }

        var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = options.MaxDepth });
        try
        {
            if (!reader.Read())
            {
                return "payload is empty";
            }

            if (reader.TokenType == JsonTokenType.StartObject)
            {
                var error = ParseElement(ref reader, -1, deviceId, nowMs, output, start);
                if (error is not null)
                {
                    return error;
                }
            }
            else if (reader.TokenType == JsonTokenType.StartArray)
            {
                for (var index = 0; ; index++)
                {
                    if (!reader.Read())
                    {
                        return "payload ends inside the array";
                    }

                    if (reader.TokenType == JsonTokenType.EndArray)
                    {
                        break;
                    }

                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        return $"element {index}: must be an object";
                    }

                    var error = ParseElement(ref reader, index, deviceId, nowMs, output, start);
                    if (error is not null)
                    {
                        return error;
                    }
                }
            }
            else
            {
                return "payload must be a JSON object or an array of objects";
            }

            if (reader.Read())
            {
                return "unexpected content after the JSON value";
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return $"malformed JSON: {ex.Message}";
        }

        return output.Count == start ? "payload contains no points" : null;
    }

    private string? ParseElement(ref Utf8JsonReader reader, int index, string deviceId, long nowMs, List<TelemetryPoint> output, int start)
    {
        string? metric = null;
        string? unit = null;
        var hasValue = false;
        var value = 0.0;
        long? timestampMs = null;
        var valuesStart = -1;
        string? error;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                {
                    return Fail(index, "'type' must be a string");
                }

                if ((error = ReadName(ref reader, MaxMetricChars, "'type'", out metric)) is not null)
                {
                    return Fail(index, error);
                }
            }
            else if (reader.ValueTextEquals("value"u8))
            {
                reader.Read();
                if ((error = ReadNumber(ref reader, "'value'", null, out value)) is not null)
                {
                    return Fail(index, error);
                }

                hasValue = true;
            }
            else if (reader.ValueTextEquals("timestamp"u8) || reader.ValueTextEquals("ts"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null)
                {
                    timestampMs = null;
                }
                else if ((error = ReadTimestamp(ref reader, nowMs, out var parsedMs)) is not null)
                {
                    return Fail(index, error);
                }
                else
                {
                    timestampMs = parsedMs;
                }
            }
            else if (reader.ValueTextEquals("unit"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null)
                {
                    unit = null;
                }
                else if (reader.TokenType != JsonTokenType.String)
                {
                    return Fail(index, "'unit' must be a string");
                }
                else if (reader.ValueSpan.IsEmpty && !reader.HasValueSequence)
                {
                    unit = null;
                }
                else if ((error = ReadName(ref reader, MaxUnitChars, "'unit'", out unit)) is not null)
                {
                    return Fail(index, error);
                }
            }
            else if (reader.ValueTextEquals("sensor_id"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String)
                {
                    if (!reader.ValueTextEquals(deviceId))
                    {
                        return Fail(index, "'sensor_id' does not match the device id of the topic");
                    }
                }
                else if (reader.TokenType != JsonTokenType.Null)
                {
                    return Fail(index, "'sensor_id' must be a string");
                }
            }
            else if (reader.ValueTextEquals("location"u8))
            {
                // Accepted for compatibility with the seed's devices; location belongs to the device, not the point.
                reader.Read();
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                {
                    return Fail(index, "'location' must be a string");
                }
            }
            else if (reader.ValueTextEquals("values"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return Fail(index, "'values' must be an object of metric names to numbers");
                }

                if (valuesStart >= 0)
                {
                    return Fail(index, "'values' appears twice");
                }

                valuesStart = output.Count;
                if ((error = ReadValues(ref reader, deviceId, output, start)) is not null)
                {
                    return Fail(index, error);
                }
            }
            else
            {
                // Unknown fields are ignored so that newer firmware can add some without being rejected.
                reader.Read();
                reader.Skip();
            }
        }

        var ts = timestampMs ?? nowMs;
        if (valuesStart >= 0)
        {
            if (metric is not null || hasValue)
            {
                return Fail(index, "has both 'values' and 'type'/'value'; use one form per element");
            }

            // The timestamp (and unit) may follow the values in the object, so they are applied now.
            var points = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(output)[valuesStart..];
            for (var i = 0; i < points.Length; i++)
            {
                points[i] = points[i] with { TimestampMs = ts, Unit = unit };
            }

            return null;
        }

        if (metric is null)
        {
            return Fail(index, hasValue ? "'type' (the metric name) is required" : "needs 'type' and 'value', or 'values'");
        }

        if (!hasValue)
        {
            return Fail(index, "'value' is required");
        }

        if (output.Count - start >= options.MaxPointsPerPayload)
        {
            return $"payload has more than {options.MaxPointsPerPayload} points";
        }

        output.Add(new TelemetryPoint(deviceId, metric, ts, value, unit));
        return null;
    }

    private string? ReadValues(ref Utf8JsonReader reader, string deviceId, List<TelemetryPoint> output, int start)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var error = ReadName(ref reader, MaxMetricChars, "metric name in 'values'", out var metric);
            if (error is not null)
            {
                return error;
            }

            reader.Read();
            if ((error = ReadNumber(ref reader, "'values.", metric, out var value)) is not null)
            {
                return error;
            }

            if (output.Count - start >= options.MaxPointsPerPayload)
            {
                return $"payload has more than {options.MaxPointsPerPayload} points";
            }

            output.Add(new TelemetryPoint(deviceId, metric, 0, value));
        }

        return null;
    }

    // The field name is only formatted on failure: a valid value must not cost a string.
    private static string? ReadNumber(ref Utf8JsonReader reader, string field, string? valuesMetric, out double value)
    {
        value = 0;
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out value) && double.IsFinite(value))
        {
            return null;
        }

        if (valuesMetric is not null)
        {
            field = $"{field}{valuesMetric}'";
        }

        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                return $"{field} must be a finite number";
            case JsonTokenType.True or JsonTokenType.False:
                return $"{field} must be a number (booleans are not supported yet)";
            default:
                // Skip a nested value so the reader stays consistent; the payload is rejected anyway.
                reader.Skip();
                return $"{field} must be a number";
        }
    }

    private string? ReadTimestamp(ref Utf8JsonReader reader, long nowMs, out long timestampMs)
    {
        timestampMs = 0;
        if (reader.TokenType != JsonTokenType.Number)
        {
            return "'timestamp' must be a number (Unix seconds or milliseconds)";
        }

        if (!reader.TryGetDouble(out var raw) || !double.IsFinite(raw))
        {
            return "'timestamp' must be a finite number";
        }

        if (raw < 0)
        {
            return "'timestamp' must not be negative";
        }

        var ms = raw < SecondsThreshold ? raw * 1000 : raw;
        if (ms > nowMs + (double)maxFutureMs)
        {
            return "'timestamp' is too far in the future";
        }

        timestampMs = (long)Math.Round(ms, MidpointRounding.AwayFromZero);
        return null;
    }

    private string? ReadName(ref Utf8JsonReader reader, int maxChars, string field, out string name)
    {
        name = string.Empty;
        var rawLength = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
        if (rawLength > maxChars * 6)
        {
            return $"{field} is longer than {maxChars} characters";
        }

        Span<char> buffer = stackalloc char[MaxRawNameBytes];
        var chars = buffer[..reader.CopyString(buffer)];
        if (chars.IsEmpty)
        {
            return $"{field} must not be empty";
        }

        if (chars.Length > maxChars)
        {
            return $"{field} is longer than {maxChars} characters";
        }

        if (chars.ContainsAnyInRange('\u0000', '\u001f') || chars.ContainsAnyInRange('\u007f', '\u009f'))
        {
            return $"{field} must not contain control characters";
        }

        name = Intern(chars);
        return null;
    }

    private string Intern(ReadOnlySpan<char> chars)
    {
        if (nameLookup.TryGetValue(chars, out var cached))
        {
            return cached;
        }

        var created = chars.ToString();

        // Bounded so that a device inventing names cannot grow the cache without limit; beyond it names just allocate.
        if (Volatile.Read(ref cachedNames) < options.NameCacheCapacity && names.TryAdd(created, created))
        {
            Interlocked.Increment(ref cachedNames);
        }

        return created;
    }

    private static string Fail(int index, string message) => index < 0 ? message : $"element {index}: {message}";

    internal static bool IsValidUtf8(in ReadOnlySequence<byte> payload)
    {
        if (payload.IsSingleSegment)
        {
            return Utf8.IsValid(payload.FirstSpan);
        }

        // A multi-byte character may be split across segments: carry the incomplete tail into the next segment.
        Span<byte> carry = stackalloc byte[4];
        var carried = 0;
        foreach (var memory in payload)
        {
            var span = memory.Span;
            while (carried > 0 && !span.IsEmpty)
            {
                if (carried == carry.Length)
                {
                    return false;
                }

                carry[carried++] = span[0];
                span = span[1..];
                var status = Rune.DecodeFromUtf8(carry[..carried], out _, out _);
                if (status == OperationStatus.Done)
                {
                    carried = 0;
                }
                else if (status != OperationStatus.NeedMoreData)
                {
                    return false;
                }
            }

            if (span.IsEmpty)
            {
                continue;
            }

            var tail = IncompleteTailLength(span);
            if (!Utf8.IsValid(span[..^tail]))
            {
                return false;
            }

            span[^tail..].CopyTo(carry);
            carried = tail;
        }

        return carried == 0;
    }

    private static int IncompleteTailLength(ReadOnlySpan<byte> span)
    {
        for (var i = 1; i <= Math.Min(4, span.Length); i++)
        {
            var b = span[^i];
            if ((b & 0xC0) == 0x80)
            {
                continue;
            }

            var needed = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
            return needed > i ? i : 0;
        }

        return 0;
    }
}
