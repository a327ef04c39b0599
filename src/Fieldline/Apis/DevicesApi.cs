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
internal static class DevicesApi
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
        string? search,
        string? sort,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (q is not null && !DeviceRules.IsDeviceId(q))
        {
            errors["q"] = ["must be the start of a device id: 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"];
        }

        if (search is { Length: 0 or > DeviceRules.MaximumSearchLength })
        {
            errors["search"] = [$"must be 1 to {DeviceRules.MaximumSearchLength} characters"];
        }

        if (!DeviceRules.TryParseSort(sort, out var order, out var descending))
        {
            errors["sort"] = [$"must be one of {DeviceRules.SortChoices}"];
        }

        DeviceType? typeFilter = type is null ? null : DeviceRules.CheckType(errors, type);
        var statusFilter = DeviceRules.CheckStatus(errors, "status", status);
        var pageSize = limit ?? DefaultPageSize;
        if (pageSize is < 1 or > MaximumPageSize)
        {
            errors["limit"] = [$"must be between 1 and {MaximumPageSize}"];
        }

        if (cursor is not null && order == DeviceOrder.Id && !DeviceRules.IsDeviceId(cursor))
        {
            errors["cursor"] = ["is not a cursor returned by this API"];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        DevicePage page;
        try
        {
            page = await services.Registry.ListAsync(new DeviceQuery(typeFilter, statusFilter, pageSize, cursor, q, search, order, descending), cancellationToken);
        }
        catch (FormatException)
        {
            // The registry owns the cursors of the other orders; one it cannot read is the client's mistake.
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["cursor"] = ["is not a cursor returned by this API for this sort"] });
        }

        return TypedResults.Ok(new DevicePageResponse([.. page.Items.Select(d => DeviceResponse.From(d))], page.NextCursor));
    }

    private static Task<Results<Ok<DeviceResponse>, ValidationProblem, ProblemHttpResult>> ReplaceDevice(
        string deviceId, DeviceUpdate update, DeviceChanges changes, CancellationToken cancellationToken) =>
        UpdateDevice(deviceId, update, replace: true, changes, cancellationToken);

    private static Task<Results<Ok<DeviceResponse>, ValidationProblem, ProblemHttpResult>> PatchDevice(
        string deviceId, DeviceUpdate update, DeviceChanges changes, CancellationToken cancellationToken) =>
        UpdateDevice(deviceId, update, replace: false, changes, cancellationToken);

    private static async Task<Results<Ok<DeviceResponse>, ValidationProblem, ProblemHttpResult>> UpdateDevice(
        string deviceId, DeviceUpdate update, bool replace, DeviceChanges changes, CancellationToken cancellationToken)
    {
        var outcome = await changes.UpdateAsync(deviceId, update, replace, cancellationToken);
        return outcome switch
        {
            { Device: { } device } => TypedResults.Ok(DeviceResponse.From(device)),
            { Errors: { } errors } => TypedResults.ValidationProblem(errors),
            { NotFound: true } => DeviceNotFound(deviceId),
            _ => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: outcome.ConflictTitle, detail: outcome.ConflictDetail),
        };
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteDevice(
        string deviceId, DeviceChanges changes, CancellationToken cancellationToken) =>
        await changes.DeleteAsync(deviceId, "api", cancellationToken) ? TypedResults.NoContent() : DeviceNotFound(deviceId);

    private static async Task<Results<Ok<DeviceTokenResponse>, ProblemHttpResult>> RotateToken(
        string deviceId, DeviceChanges changes, CancellationToken cancellationToken) =>
        await changes.RotateTokenAsync(deviceId, cancellationToken) is { } token
            ? TypedResults.Ok(new DeviceTokenResponse(deviceId, token))
            : DeviceNotFound(deviceId);

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
}
