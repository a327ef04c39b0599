using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Core.Events;
using Fieldline.Core.Shadows;
using Fieldline.Core.Telemetry;

namespace Fieldline.Apis;

/// <summary>How a change of a device ended: the device as changed, the errors by field, not found, or a conflict.</summary>
internal sealed record DeviceChangeOutcome(Device? Device, Dictionary<string, string[]>? Errors = null, bool NotFound = false, string? ConflictTitle = null, string? ConflictDetail = null);

/// <summary>
/// Changes registered devices for the REST API and the web console alike: updates with their rules, deletion with
/// the device's data, token rotation. Each change also ends the device's connections where it must (a new token or
/// certificate, maintenance, deletion).
/// </summary>
internal sealed partial class DeviceChanges(
    IDeviceRegistry registry,
    ITelemetryStore telemetry,
    IDeviceConnections connections,
    TelemetryPipeline pipeline,
    EventBus events,
    ShadowService shadows,
    ILogger<DeviceChanges> logger)
{
    /// <summary>
    /// Applies <paramref name="update"/>: with <paramref name="replace"/> (PUT) every mutable field is replaced and an
    /// absent one becomes empty; otherwise (PATCH) what was not sent is kept.
    /// </summary>
    public async Task<DeviceChangeOutcome> UpdateAsync(string deviceId, DeviceUpdate update, bool replace, CancellationToken cancellationToken)
    {
        var current = await registry.GetAsync(deviceId, cancellationToken);
        if (current is null)
        {
            return new DeviceChangeOutcome(null, NotFound: true);
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
            return new DeviceChangeOutcome(null, errors);
        }

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

        switch (await registry.UpdateAsync(updated, cancellationToken))
        {
            case RegistryWriteResult.NotFound:
                return new DeviceChangeOutcome(null, NotFound: true);
            case RegistryWriteResult.CertificateInUse:
                return new DeviceChangeOutcome(null, ConflictTitle: "Certificate already registered", ConflictDetail: DevicesApi.CertificateInUseDetail);
        }

        if (!string.Equals(updated.CertificateFingerprint, current.CertificateFingerprint, StringComparison.Ordinal))
        {
            // Connections authenticated with the old certificate end with it, as with a rotated token.
            LogCertificateChanged(deviceId);
            connections.Disconnect(deviceId);
        }

        if (updated.Status != current.Status)
        {
            LogStatusChanged(deviceId, current.Status, updated.Status);
            if (updated.Status == DeviceStatus.Maintenance)
            {
                // A device in maintenance may not connect; one connected before goes too.
                connections.Disconnect(deviceId);
            }
        }

        return new DeviceChangeOutcome(updated);
    }

    /// <summary>Deletes the device, its connections, shadow and telemetry; false when there is no such device.</summary>
    public async Task<bool> DeleteAsync(string deviceId, string source, CancellationToken cancellationToken)
    {
        if (await registry.DeleteAsync(deviceId, cancellationToken) == RegistryWriteResult.NotFound)
        {
            return false;
        }

        // The registry goes first: once the device is unknown it cannot connect again; then its live
        // connections are closed, so that no new points arrive for it, and its data is removed.
        // Points of the device still in the pipeline are written first, or they would bring its series back. The
        // deletion then runs to the end even if the caller goes away: the registry row is already gone.
        connections.Disconnect(deviceId);
        shadows.Forget(deviceId);
        await pipeline.FlushAsync(CancellationToken.None);
        await telemetry.DeleteDeviceAsync(deviceId, CancellationToken.None);
        LogDeviceDeleted(deviceId);
        events.Publish(EventTypes.DeviceDeleted, source, deviceId, new JsonObject { ["device_id"] = deviceId });
        return true;
    }

    /// <summary>Gives the device a new token (returned once; its hash is stored) and ends the connections made with the old one; null when there is no such device.</summary>
    public async Task<string?> RotateTokenAsync(string deviceId, CancellationToken cancellationToken)
    {
        var token = DeviceTokens.Generate();
        if (await registry.SetTokenHashAsync(deviceId, DeviceTokens.Hash(token), cancellationToken) == RegistryWriteResult.NotFound)
        {
            return null;
        }

        connections.Disconnect(deviceId);
        LogTokenRotated(deviceId);
        return token;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Device {DeviceId} changed status from {Previous} to {Current}")]
    private partial void LogStatusChanged(string deviceId, DeviceStatus previous, DeviceStatus current);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted device {DeviceId} and its telemetry")]
    private partial void LogDeviceDeleted(string deviceId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Changed the client certificate of device {DeviceId}")]
    private partial void LogCertificateChanged(string deviceId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rotated the token of device {DeviceId}")]
    private partial void LogTokenRotated(string deviceId);
}
