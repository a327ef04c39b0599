using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Fieldline.Core;
using Fieldline.Core.Devices;

namespace Fieldline.Apis;

/// <summary>POST /api/v1/devices. Enums arrive as strings so that a bad value is reported against its field.</summary>
internal sealed record DeviceRegistration(
    string? DeviceId,
    string? Name,
    string? Type,
    string? Model,
    string? FirmwareVersion,
    string? Location,
    Dictionary<string, string>? Metadata,
    string? CertificateFingerprint = null);

/// <summary>
/// PUT (all mutable fields; an absent status keeps the current one) and PATCH (only the fields sent; an empty
/// certificate_fingerprint removes the certificate).
/// </summary>
internal sealed record DeviceUpdate(
    string? Name,
    string? Type,
    string? Model,
    string? FirmwareVersion,
    string? Status,
    string? Location,
    Dictionary<string, string>? Metadata,
    string? CertificateFingerprint = null);

/// <summary>A device as the API shows it; <see cref="Token"/> only in the response to registration.</summary>
internal sealed record DeviceResponse(
    string DeviceId,
    string Name,
    DeviceType Type,
    string? Model,
    string? FirmwareVersion,
    DeviceStatus Status,
    string? Location,
    DateTimeOffset? LastSeen,
    DateTimeOffset RegisteredAt,
    IReadOnlyDictionary<string, string> Metadata,
    string? CertificateFingerprint,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    string? Token = null)
{
    public static DeviceResponse From(Device device, string? token = null) => new(
        device.DeviceId, device.Name, device.Type, device.Model, device.FirmwareVersion, device.Status,
        device.Location, device.LastSeen, device.RegisteredAt, device.Metadata, device.CertificateFingerprint, token);
}

internal sealed record DevicePageResponse(IReadOnlyList<DeviceResponse> Items, string? NextCursor);

internal sealed record DeviceTokenResponse(string DeviceId, string Token);

internal sealed record StatusChangeResponse(DeviceStatus Status, DateTimeOffset At);

/// <summary>The rules for device fields; errors are keyed by the snake_case field name.</summary>
internal static partial class DeviceRules
{
    public const int MaximumTextLength = 256;
    public const int MaximumMetadataEntries = 64;
    public const int MaximumMetadataValueLength = 1024;

    // \z, not $: $ also matches before a final newline. No leading dot: "." and ".." are path segments that
    // routing removes, so such a device could never be addressed again.
    [GeneratedRegex(@"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}\z")]
    public static partial Regex DeviceIdPattern { get; }

    public static bool IsDeviceId(string? value) => value is not null && DeviceIdPattern.IsMatch(value);

    /// <summary>The longest text a device search takes.</summary>
    public const int MaximumSearchLength = 128;

    /// <summary>The sorts a device listing takes, as the API and the console name them.</summary>
    public const string SortChoices = "device_id, -device_id, name, -name, last_seen, -last_seen";

    /// <summary>Reads <c>sort</c>: a field, descending with a leading '-'; none sorts by device_id.</summary>
    public static bool TryParseSort(string? sort, out DeviceOrder order, out bool descending)
    {
        descending = sort is ['-', ..];
        var field = descending ? sort![1..] : sort;
        (var known, order) = field switch
        {
            "" => (!descending, DeviceOrder.Id),
            null or "device_id" => (true, DeviceOrder.Id),
            "name" => (true, DeviceOrder.Name),
            "last_seen" => (true, DeviceOrder.LastSeen),
            _ => (false, DeviceOrder.Id),
        };
        return known;
    }

    public static void CheckDeviceId(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (!IsDeviceId(value))
        {
            errors[field] = ["must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"];
        }
    }

    public static void CheckName(Dictionary<string, string[]> errors, string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            errors["name"] = ["is required"];
        }
        else
        {
            CheckLength(errors, "name", name);
        }
    }

    public static DeviceType CheckType(Dictionary<string, string[]> errors, string? type)
    {
        if (WireNames.TryParse<DeviceType>(type, out var parsed))
        {
            return parsed;
        }

        errors["type"] = [$"must be one of {WireNames.Choices<DeviceType>()}"];
        return default;
    }

    public static DeviceStatus? CheckStatus(Dictionary<string, string[]> errors, string field, string? status)
    {
        if (status is null)
        {
            return null;
        }

        if (WireNames.TryParse<DeviceStatus>(status, out var parsed))
        {
            return parsed;
        }

        errors[field] = [$"must be one of {WireNames.Choices<DeviceStatus>()}"];
        return null;
    }

    /// <summary>The fingerprint in its stored form; null (and an error) when it is not one.</summary>
    public static string? CheckCertificateFingerprint(Dictionary<string, string[]> errors, string value)
    {
        if (DeviceCertificates.TryNormalizeFingerprint(value, out var fingerprint))
        {
            return fingerprint;
        }

        errors["certificate_fingerprint"] = ["must be the SHA-256 fingerprint of the DER certificate: 64 hex digits, or 32 colon-separated pairs"];
        return null;
    }

    public static void CheckLength(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (value is { Length: > MaximumTextLength })
        {
            errors[field] = [$"must be at most {MaximumTextLength} characters"];
        }
    }

    public static void CheckMetadata(Dictionary<string, string[]> errors, Dictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return;
        }

        if (metadata.Count > MaximumMetadataEntries)
        {
            errors["metadata"] = [$"must have at most {MaximumMetadataEntries} entries"];
        }
        else if (metadata.Any(p => p.Key.Length is 0 or > MaximumTextLength || p.Value is null || p.Value.Length > MaximumMetadataValueLength))
        {
            errors["metadata"] = [$"keys must be 1 to {MaximumTextLength} characters and values strings of at most {MaximumMetadataValueLength} characters"];
        }
    }
}
