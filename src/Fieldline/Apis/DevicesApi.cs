using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Core.Events;
using Fieldline.Core.Shadows;
using Fieldline.Core.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fieldline.Apis;

/// <summary>The services the device and telemetry endpoints use, bound with [AsParameters].</summary>
internal sealed record DeviceServices(
    IDeviceRegistry Registry,
    ITelemetryStore Telemetry,
    IDeviceConnections Connections,
    TelemetryPipeline Pipeline,
    TimeProvider TimeProvider,
    EventBus Events,
    ShadowService Shadows,
    ILogger<DeviceServices> Logger);

/// <summary>/api/v1/devices: registration, lookup, listing, updates, deletion and token rotation.</summary>
internal static partial class DevicesApi
{
    public const int DefaultPageSize = 100;
    public const int MaximumPageSize = 1000;

    public static RouteGroupBuilder MapDevicesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices").WithTags("Devices");
        api.MapPost("/", RegisterDevice);
        api.MapGet("/", ListDevices);
        api.MapGet("/{deviceId}", GetDevice);
        api.MapPut("/{deviceId}", ReplaceDevice);
        api.MapPatch("/{deviceId}", PatchDevice);
        api.MapDelete("/{deviceId}", DeleteDevice);
        api.MapPost("/{deviceId}/token", RotateToken);
        api.MapGet("/{deviceId}/status-history", GetStatusHistory);
        return api;
    }

    internal static ProblemHttpResult DeviceNotFound(string deviceId) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Device not found", detail: $"No device has the id '{deviceId}'.");

    private static async Task<Results<Created<DeviceResponse>, ValidationProblem, ProblemHttpResult>> RegisterDevice(
        DeviceRegistration registration, DeviceRegistrations registrations, CancellationToken cancellationToken)
    {
        var outcome = await registrations.RegisterAsync(registration, "api", cancellationToken);
        if (outcome.Errors is { } errors)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (outcome.Device is not { } device)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: outcome.ConflictTitle, detail: outcome.ConflictDetail);
        }

        return TypedResults.Created($"/api/v1/devices/{device.DeviceId}", DeviceResponse.From(device, outcome.Token));
    }

    private static async Task<Results<Ok<DeviceResponse>, ProblemHttpResult>> GetDevice(
        string deviceId, [AsParameters] DeviceServices services, CancellationToken cancellationToken) =>
        await services.Registry.GetAsync(deviceId, cancellationToken) is { } device
            ? TypedResults.Ok(DeviceResponse.From(device))
            : DeviceNotFound(deviceId);

    private static async Task<Results<Ok<DevicePageResponse>, ValidationProblem>> ListDevices(
        [AsParameters] DeviceServices services,
        string? type,
        string? status,
        int? limit,
        string? cursor,
        string? q,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (q is not null && !DeviceRules.IsDeviceId(q))
        {
            errors["q"] = ["must be the start of a device id: 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"];
        }

        DeviceType? typeFilter = type is null ? null : DeviceRules.CheckType(errors, type);
        var statusFilter = DeviceRules.CheckStatus(errors, "status", status);
        var pageSize = limit ?? DefaultPageSize;
        if (pageSize is < 1 or > MaximumPageSize)
        {
            errors["limit"] = [$"must be between 1 and {MaximumPageSize}"];
        }

        if (cursor is not null && !DeviceRules.IsDeviceId(cursor))
        {
            errors["cursor"] = ["is not a cursor returned by this API"];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var page = await services.Registry.ListAsync(new DeviceQuery(typeFilter, statusFilter, pageSize, cursor, q), cancellationToken);
        return TypedResults.Ok(new DevicePageResponse([.. page.Items.Select(d => DeviceResponse.From(d))], page.NextCursor));
    }

    private static Task<Results<Ok<DeviceResponse>, ValidationProblem, ProblemHttpResult>> ReplaceDevice(
        string deviceId, DeviceUpdate update, [AsParameters] DeviceServices services, CancellationToken cancellationToken) =>
        UpdateDevice(deviceId, update, replace: true, services, cancellationToken);

    private static Task<Results<Ok<DeviceResponse>, ValidationProblem, ProblemHttpResult>> PatchDevice(
        string deviceId, DeviceUpdate update, [AsParameters] DeviceServices services, CancellationToken cancellationToken) =>
        UpdateDevice(deviceId, update, replace: false, services, cancellationToken);

    private static async Task<Results<Ok<DeviceResponse>, ValidationProblem, ProblemHttpResult>> UpdateDevice(
        string deviceId, DeviceUpdate update, bool replace, DeviceServices services, CancellationToken cancellationToken)
    {
        var current = await services.Registry.GetAsync(deviceId, cancellationToken);
        if (current is null)
        {
            return DeviceNotFound(deviceId);
        }

        var errors = new Dictionary<string, string[]>();
        if (replace || update.Name is not null)
        {
            DeviceRules.CheckName(errors, update.Name);
        }

        var type = replace || update.Type is not null ? DeviceRules.CheckType(errors, update.Type) : current.Type;
        var status = DeviceRules.CheckStatus(errors, "status", update.Status) ?? current.Status;
        DeviceRules.CheckLength(errors, "model", update.Model);
        DeviceRules.CheckLength(errors, "firmware_version", update.FirmwareVersion);
        DeviceRules.CheckLength(errors, "location", update.Location);
        DeviceRules.CheckMetadata(errors, update.Metadata);
        var fingerprint = update.CertificateFingerprint switch
        {
            null => replace ? null : current.CertificateFingerprint,
            "" => null,
            var given => DeviceRules.CheckCertificateFingerprint(errors, given),
        };
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        // PUT replaces every mutable field (absent ones become empty); PATCH keeps what was not sent.
        var updated = current with
        {
            Name = update.Name ?? current.Name,
            Type = type,
            Status = status,
            Model = replace ? update.Model : update.Model ?? current.Model,
            FirmwareVersion = replace ? update.FirmwareVersion : update.FirmwareVersion ?? current.FirmwareVersion,
            Location = replace ? update.Location : update.Location ?? current.Location,
            Metadata = replace ? update.Metadata ?? [] : update.Metadata ?? current.Metadata,
            CertificateFingerprint = fingerprint,
        };

        switch (await services.Registry.UpdateAsync(updated, cancellationToken))
        {
            case RegistryWriteResult.NotFound:
                return DeviceNotFound(deviceId);
            case RegistryWriteResult.CertificateInUse:
                return CertificateInUse();
        }

        if (!string.Equals(updated.CertificateFingerprint, current.CertificateFingerprint, StringComparison.Ordinal))
        {
            // Connections authenticated with the old certificate end with it, as with a rotated token.
            LogCertificateChanged(services.Logger, deviceId);
            services.Connections.Disconnect(deviceId);
        }

        if (updated.Status != current.Status)
        {
            LogStatusChanged(services.Logger, deviceId, current.Status, updated.Status);
            if (updated.Status == DeviceStatus.Maintenance)
            {
                // A device in maintenance may not connect; one connected before goes too.
                services.Connections.Disconnect(deviceId);
            }
        }

        return TypedResults.Ok(DeviceResponse.From(updated));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteDevice(
        string deviceId, [AsParameters] DeviceServices services, CancellationToken cancellationToken)
    {
        if (await services.Registry.DeleteAsync(deviceId, cancellationToken) == RegistryWriteResult.NotFound)
        {
            return DeviceNotFound(deviceId);
        }

        // The registry goes first: once the device is unknown it cannot connect again; then its live
        // connections are closed, so that no new points arrive for it, and its data is removed.
        // Points of the device still in the pipeline are written first, or they would bring its series back. The
        // deletion then runs to the end even if the client goes away: the registry row is already gone.
        services.Connections.Disconnect(deviceId);
        services.Shadows.Forget(deviceId);
        await services.Pipeline.FlushAsync(CancellationToken.None);
        await services.Telemetry.DeleteDeviceAsync(deviceId, CancellationToken.None);
        LogDeviceDeleted(services.Logger, deviceId);
        services.Events.Publish(EventTypes.DeviceDeleted, "api", deviceId, new JsonObject { ["device_id"] = deviceId });
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<DeviceTokenResponse>, ProblemHttpResult>> RotateToken(
        string deviceId, [AsParameters] DeviceServices services, CancellationToken cancellationToken)
    {
        var token = DeviceTokens.Generate();
        if (await services.Registry.SetTokenHashAsync(deviceId, DeviceTokens.Hash(token), cancellationToken) == RegistryWriteResult.NotFound)
        {
            return DeviceNotFound(deviceId);
        }

        // Connections authenticated with the old token end with it.
        services.Connections.Disconnect(deviceId);
        LogTokenRotated(services.Logger, deviceId);
        return TypedResults.Ok(new DeviceTokenResponse(deviceId, token));
    }

    private static async Task<Results<Ok<IReadOnlyList<StatusChangeResponse>>, ValidationProblem, ProblemHttpResult>> GetStatusHistory(
        string deviceId, int? limit, [AsParameters] DeviceServices services, CancellationToken cancellationToken)
    {
        var count = limit ?? DefaultPageSize;
        if (count is < 1 or > MaximumPageSize)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"must be between 1 and {MaximumPageSize}"] });
        }

        if (await services.Registry.GetAsync(deviceId, cancellationToken) is null)
        {
            return DeviceNotFound(deviceId);
        }

        var history = await services.Registry.GetStatusHistoryAsync(deviceId, count, cancellationToken);
        return TypedResults.Ok<IReadOnlyList<StatusChangeResponse>>([.. history.Select(h => new StatusChangeResponse(h.Status, h.At))]);
    }

    internal const string CertificateInUseDetail = "Another device is registered with this certificate_fingerprint; a certificate identifies one device.";

    private static ProblemHttpResult CertificateInUse() => TypedResults.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Certificate already registered",
        detail: CertificateInUseDetail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Device {DeviceId} changed status from {Previous} to {Current}")]
    private static partial void LogStatusChanged(ILogger logger, string deviceId, DeviceStatus previous, DeviceStatus current);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted device {DeviceId} and its telemetry")]
    private static partial void LogDeviceDeleted(ILogger logger, string deviceId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Changed the client certificate of device {DeviceId}")]
    private static partial void LogCertificateChanged(ILogger logger, string deviceId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rotated the token of device {DeviceId}")]
    private static partial void LogTokenRotated(ILogger logger, string deviceId);
}
