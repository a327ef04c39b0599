using System.Formats.Cbor;
using System.Text.Json;

namespace Fieldline.Core.Telemetry;

/// <summary>The encodings a device may send its telemetry in.</summary>
public enum TelemetryPayloadFormat
{
    /// <summary>Fieldline's JSON forms (see <see cref="TelemetryPayloadParser"/>).</summary>
    Json,

    /// <summary>SenML in JSON (RFC 8428 §5, <c>application/senml+json</c>, CoAP content format 110).</summary>
    SenmlJson,

    /// <summary>SenML in CBOR (RFC 8428 §6, <c>application/senml+cbor</c>, CoAP content format 112).</summary>
    SenmlCbor,
}

/// <summary>
/// Reads SenML packs (RFC 8428), JSON or CBOR, into <see cref="TelemetryPoint"/>s of one device. Each record's
/// resolved name (<c>bn</c> + <c>n</c>) is the metric; its value is <c>bv</c> + <c>v</c>, a boolean <c>vb</c> as 1 or
/// 0, or else the sum <c>bs</c> + <c>s</c>; its time is <c>bt</c> + <c>t</c> in seconds, relative to now when below
/// 2^28 (§4.5.3); its unit <c>u</c> or <c>bu</c>. A record with base fields only sets them for the records after it.
/// </summary>
/// <remarks>
/// The pack is accepted or refused whole, with the record and the field named: a string or data value (<c>vs</c>,
/// <c>vd</c>), which Fieldline cannot store as a number; a name outside RFC 8428 §4.5.1's characters; a field ending in
/// <c>_</c>, which the RFC says must be understood (§4.4); a <c>bver</c> above 10.
/// </remarks>
public sealed class SenmlPayloadParser
{
    private const int SupportedVersion = 10;
    private const int MaxMetricChars = 128;
    private const int MaxUnitChars = 32;
    private const double RelativeTimeLimit = 268_435_456; // 2^28 seconds: smaller times are relative to now

    private readonly TelemetryPayloadParserOptions _options;

    /// <summary>Creates a parser with the limits of <paramref name="options"/> (defaults when null).</summary>
    public SenmlPayloadParser(TelemetryPayloadParserOptions? options = null) => _options = options ?? new TelemetryPayloadParserOptions();

    /// <summary>Parses a SenML pack; on failure <paramref name="output"/> is left as it was and the error says why.</summary>
    public bool TryParse(string deviceId, ReadOnlySpan<byte> payload, TelemetryPayloadFormat format, long nowMs, List<TelemetryPoint> output, out string? error)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        ArgumentNullException.ThrowIfNull(output);
        var start = output.Count;
        var state = new PackState(deviceId, nowMs, output);
        try
        {
            error = payload.IsEmpty ? "payload is empty"
                : format == TelemetryPayloadFormat.SenmlCbor ? ParseCbor(payload, ref state)
                : format == TelemetryPayloadFormat.SenmlJson ? ParseJson(payload, ref state)
                : throw new ArgumentOutOfRangeException(nameof(format), format, "not a SenML format");
        }
        catch (JsonException e)
        {
            error = $"payload is not valid JSON: {e.Message}";
        }
        catch (Exception e) when (e is CborContentException or InvalidOperationException or FormatException or OverflowException)
        {
            error = $"payload is not valid SenML CBOR: {e.Message}";
        }

        if (error is null)
        {
            return true;
        }

        output.RemoveRange(start, output.Count - start);
        return false;
    }

    private string? ParseJson(ReadOnlySpan<byte> payload, ref PackState state)
    {
        var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = 3 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            return "a SenML pack is a JSON array of records";
        }

        for (var index = 0; ; index++)
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.EndArray)
            {
                break;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return $"record {index}: must be an object";
            }

            var record = new Record();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var field = reader.GetString()!;
                reader.Read();
                var error = ReadJsonField(ref reader, field, ref record);
                if (error is not null)
                {
                    return $"record {index}: {error}";
                }
            }

            var failure = Resolve(index, record, ref state);
            if (failure is not null)
            {
                return failure;
            }
        }

        return reader.Read() ? "unexpected content after the SenML pack" : null;
    }

    private static string? ReadJsonField(ref Utf8JsonReader reader, string field, ref Record record)
    {
        switch (field)
        {
            case "bn": return JsonText(ref reader, field, out record.BaseName);
            case "n": return JsonText(ref reader, field, out record.Name);
            case "bu": return JsonText(ref reader, field, out record.BaseUnit);
            case "u": return JsonText(ref reader, field, out record.Unit);
            case "bt": return JsonNumber(ref reader, field, out record.BaseTime);
            case "t": return JsonNumber(ref reader, field, out record.Time);
            case "bv": return JsonNumber(ref reader, field, out record.BaseValue);
            case "v": return JsonNumber(ref reader, field, out record.Value);
            case "bs": return JsonNumber(ref reader, field, out record.BaseSum);
            case "s": return JsonNumber(ref reader, field, out record.Sum);
            case "ut": return JsonNumber(ref reader, field, out _);
            case "bver":
                var version = JsonNumber(ref reader, field, out var number);
                record.Version = number;
                return version;
            case "vb":
                if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                {
                    return "'vb' must be true or false";
                }

                record.BooleanValue = reader.GetBoolean();
                return null;
            case "vs" or "vd":
                record.UnstorableValue = field;
                reader.Skip();
                return null;
            default:
                if (field.EndsWith('_'))
                {
                    return $"field '{field}' must be understood (RFC 8428 §4.4) and is not";
                }

                reader.Skip();
                return null;
        }
    }

    private static string? JsonText(ref Utf8JsonReader reader, string field, out string? text)
    {
        text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return text is null ? $"'{field}' must be a string" : null;
    }

    private static string? JsonNumber(ref Utf8JsonReader reader, string field, out double? number)
    {
        number = reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var value) && double.IsFinite(value) ? value : null;
        return number is null ? $"'{field}' must be a finite number" : null;
    }

    private string? ParseCbor(ReadOnlySpan<byte> payload, ref PackState state)
    {
        var reader = new CborReader(payload.ToArray(), CborConformanceMode.Lax);
        if (reader.PeekState() != CborReaderState.StartArray)
        {
            return "a SenML pack is a CBOR array of records";
        }

        reader.ReadStartArray();
        for (var index = 0; reader.PeekState() != CborReaderState.EndArray; index++)
        {
            if (reader.PeekState() != CborReaderState.StartMap)
            {
                return $"record {index}: must be a map";
            }

            reader.ReadStartMap();
            var record = new Record();
            while (reader.PeekState() != CborReaderState.EndMap)
            {
                var error = ReadCborField(reader, ref record);
                if (error is not null)
                {
                    return $"record {index}: {error}";
                }
            }

            reader.ReadEndMap();
            var failure = Resolve(index, record, ref state);
            if (failure is not null)
            {
                return failure;
            }
        }

        reader.ReadEndArray();
        return reader.BytesRemaining > 0 ? "unexpected content after the SenML pack" : null;
    }

    /// <summary>RFC 8428 §6: labels are integers (negative for base fields); other fields keep their text names.</summary>
    private static string? ReadCborField(CborReader reader, ref Record record)
    {
        if (reader.PeekState() == CborReaderState.TextString)
        {
            var name = reader.ReadTextString();
            if (name.EndsWith('_'))
            {
                return $"field '{name}' must be understood (RFC 8428 §4.4) and is not";
            }

            reader.SkipValue();
            return null;
        }

        if (reader.PeekState() is not (CborReaderState.UnsignedInteger or CborReaderState.NegativeInteger))
        {
            return "a field label must be an integer or a text string";
        }

        var label = reader.ReadInt64();
        switch (label)
        {
            case -2: return CborText(reader, "bn", out record.BaseName);
            case 0: return CborText(reader, "n", out record.Name);
            case -4: return CborText(reader, "bu", out record.BaseUnit);
            case 1: return CborText(reader, "u", out record.Unit);
            case -3: return CborNumber(reader, "bt", out record.BaseTime);
            case 6: return CborNumber(reader, "t", out record.Time);
            case -5: return CborNumber(reader, "bv", out record.BaseValue);
            case 2: return CborNumber(reader, "v", out record.Value);
            case -6: return CborNumber(reader, "bs", out record.BaseSum);
            case 5: return CborNumber(reader, "s", out record.Sum);
            case -1: return CborNumber(reader, "bver", out record.Version);
            case 4:
                if (reader.PeekState() != CborReaderState.Boolean)
                {
                    return "'vb' must be true or false";
                }

                record.BooleanValue = reader.ReadBoolean();
                return null;
            case 3 or 8:
                record.UnstorableValue = label == 3 ? "vs" : "vd";
                reader.SkipValue();
                return null;
            default:
                reader.SkipValue(); // ut (7) and labels of extensions
                return null;
        }
    }

    private static string? CborText(CborReader reader, string field, out string? text)
    {
        text = reader.PeekState() == CborReaderState.TextString ? reader.ReadTextString() : null;
        return text is null ? $"'{field}' must be a text string" : null;
    }

    private static string? CborNumber(CborReader reader, string field, out double? number)
    {
        number = reader.PeekState() switch
        {
            CborReaderState.UnsignedInteger or CborReaderState.NegativeInteger => reader.ReadInt64(),
            CborReaderState.HalfPrecisionFloat or CborReaderState.SinglePrecisionFloat or CborReaderState.DoublePrecisionFloat => reader.ReadDouble(),
            _ => null,
        };
        return number is { } value && double.IsFinite(value) ? null : $"'{field}' must be a finite number";
    }

    /// <summary>Applies the record's base fields to the pack, then adds its point (RFC 8428 §4.6).</summary>
    private string? Resolve(int index, in Record record, ref PackState state)
    {
        if (record.Version is { } version && version > SupportedVersion)
        {
            return $"record {index}: SenML version {version} is newer than the supported {SupportedVersion}";
        }

        state.BaseName = record.BaseName ?? state.BaseName;
        state.BaseTime = record.BaseTime ?? state.BaseTime;
        state.BaseUnit = record.BaseUnit ?? state.BaseUnit;
        state.BaseValue = record.BaseValue ?? state.BaseValue;
        state.BaseSum = record.BaseSum ?? state.BaseSum;

        var hasValue = record.Value is not null || record.BooleanValue is not null || record.Sum is not null || record.UnstorableValue is not null;
        if (record.Name is null && !hasValue)
        {
            return null; // base fields only
        }

        if (record.UnstorableValue is { } unstorable && record.Value is null && record.BooleanValue is null)
        {
            return $"record {index}: '{unstorable}' values are not stored; Fieldline keeps numbers (v, vb, s)";
        }

        if (!hasValue)
        {
            return $"record {index}: has no value (v, vb or s)";
        }

        var name = state.BaseName + record.Name;
        if (name.Length == 0)
        {
            return $"record {index}: has no name (n or bn)";
        }

        if (name.Length > MaxMetricChars)
        {
            return $"record {index}: the name is longer than {MaxMetricChars} characters";
        }

        if (!IsValidName(name))
        {
            return $"record {index}: the name '{name}' must start with a letter or digit and contain only letters, digits and - : . / _ (RFC 8428 §4.5.1)";
        }

        var unit = record.Unit ?? state.BaseUnit;
        if (unit is { Length: > MaxUnitChars })
        {
            return $"record {index}: the unit is longer than {MaxUnitChars} characters";
        }

        double value = record.Value is { } v ? state.BaseValue + v
            : record.BooleanValue is { } b ? (b ? 1 : 0)
            : state.BaseSum + record.Sum!.Value;
        if (!double.IsFinite(value))
        {
            return $"record {index}: the value is not a finite number";
        }

        var seconds = state.BaseTime + (record.Time ?? 0);
        var ms = seconds < RelativeTimeLimit ? state.NowMs + (seconds * 1000) : seconds * 1000;
        if (ms < 0 || ms > state.NowMs + _options.MaxFutureSkew.TotalMilliseconds)
        {
            return $"record {index}: the time is {(ms < 0 ? "before 1970" : "too far in the future")}";
        }

        if (state.Output.Count - state.Start >= _options.MaxPointsPerPayload)
        {
            return $"a pack may carry at most {_options.MaxPointsPerPayload} records with values";
        }

        state.Output.Add(new TelemetryPoint(state.DeviceId, name, (long)Math.Round(ms, MidpointRounding.AwayFromZero), value, unit));
        return null;
    }

    private static bool IsValidName(string name)
    {
        if (!char.IsAsciiLetterOrDigit(name[0]))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or ':' or '.' or '/' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    private struct Record
    {
        public string? BaseName;
        public string? Name;
        public string? BaseUnit;
        public string? Unit;
        public double? BaseTime;
        public double? Time;
        public double? BaseValue;
        public double? Value;
        public double? BaseSum;
        public double? Sum;
        public double? Version;
        public bool? BooleanValue;
        public string? UnstorableValue;
    }

    private struct PackState(string deviceId, long nowMs, List<TelemetryPoint> output)
    {
        public readonly string DeviceId = deviceId;
        public readonly long NowMs = nowMs;
        public readonly List<TelemetryPoint> Output = output;
        public readonly int Start = output.Count;
        public string? BaseName;
        public string? BaseUnit;
        public double BaseTime;
        public double BaseValue;
        public double BaseSum;
    }
}
