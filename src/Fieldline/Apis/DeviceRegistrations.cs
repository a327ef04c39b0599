using System.Text.Json.Nodes;
using Fieldline.Core;
using Fieldline.Core.Devices;
using Fieldline.Core.Events;

namespace Fieldline.Apis;

/// <summary>The outcome of a registration: the device and its token, the errors by field, or a conflict.</summary>
internal sealed record RegistrationOutcome(Device? Device, string? Token, Dictionary<string, string[]>? Errors = null, string? ConflictTitle = null, string? ConflictDetail = null);

/// <summary>
/// Registers devices for the REST API and the web console alike: the rules of each field, the token (generated,
/// returned once, stored as its hash), the registry write and the DeviceRegistered event.
/// </summary>
internal sealed partial class DeviceRegistrations(IDeviceRegistry registry, EventBus events, TimeProvider timeProvider, ILogger<DeviceRegistrations> logger)
{
    public async Task<RegistrationOutcome> RegisterAsync(DeviceRegistration registration, string source, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        DeviceRules.CheckDeviceId(errors, "device_id", registration.DeviceId);
        DeviceRules.CheckName(errors, registration.Name);
        var type = DeviceRules.CheckType(errors, registration.Type);
        DeviceRules.CheckLength(errors, "model", registration.Model);
        DeviceRules.CheckLength(errors, "firmware_version", registration.FirmwareVersion);
        DeviceRules.CheckLength(errors, "location", registration.Location);
        DeviceRules.CheckMetadata(errors, registration.Metadata);
        var fingerprint = registration.CertificateFingerprint is { } given ? DeviceRules.CheckCertificateFingerprint(errors, given) : null;
        if (errors.Count > 0)
        {
            return new RegistrationOutcome(null, null, errors);
        }

        var device = new Device
        {
            DeviceId = registration.DeviceId!,
            Name = registration.Name!,
            Type = type,
            Model = registration.Model,
            FirmwareVersion = registration.FirmwareVersion,
            Location = registration.Location,
            Status = DeviceStatus.Offline,

            // The registry keeps milliseconds; the answer shows what a later read returns.
            RegisteredAt = DateTimeOffset.FromUnixTimeMilliseconds(timeProvider.GetUtcNow().ToUnixTimeMilliseconds()),
            Metadata = registration.Metadata ?? [],
            CertificateFingerprint = fingerprint,
        };

        var token = DeviceTokens.Generate();
        switch (await registry.CreateAsync(device, DeviceTokens.Hash(token), cancellationToken).ConfigureAwait(false))
        {
            case RegistryWriteResult.Conflict:
                return new RegistrationOutcome(null, null, ConflictTitle: "Device already exists", ConflictDetail: $"A device with the id '{device.DeviceId}' is already registered.");
            case RegistryWriteResult.CertificateInUse:
                return new RegistrationOutcome(null, null, ConflictTitle: "Certificate already registered", ConflictDetail: DevicesApi.CertificateInUseDetail);
            case RegistryWriteResult.NameTaken:
                return new RegistrationOutcome(
                    null,
                    null,
                    ConflictTitle: "Device id taken",
                    ConflictDetail: $"'{device.DeviceId}' is the user name of a service account. Device ids and service account user names are both MQTT user names, so they must differ.");
        }

        LogDeviceRegistered(device.DeviceId, device.Type);
        events.Publish(EventTypes.DeviceRegistered, source, device.DeviceId, new JsonObject
        {
            ["device_id"] = device.DeviceId,
            ["type"] = WireNames.Name(device.Type),
            ["name"] = device.Name,
        });
        return new RegistrationOutcome(device, token);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered device {DeviceId} ({Type})")]
    private partial void LogDeviceRegistered(string deviceId, DeviceType type);
}
