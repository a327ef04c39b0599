using System.Text;

namespace Fieldline.Core.Devices;

/// <summary>
/// An authenticated device on a connection. Holds the UTF-8 forms of its topic prefixes, computed once at
/// connect, so that authorizing each message is a byte comparison without allocation.
/// </summary>
public sealed class DeviceIdentity
{
    /// <summary>Creates the identity of a device.</summary>
    public DeviceIdentity(string deviceId)
    {
        DeviceId = deviceId;
        SensorPrefix = Encoding.UTF8.GetBytes($"sensor/{deviceId}/");
        DevicePrefix = Encoding.UTF8.GetBytes($"device/{deviceId}/");
        TelemetryTopic = Encoding.UTF8.GetBytes($"sensor/{deviceId}/telemetry");
    }

    /// <summary>The device id.</summary>
    public string DeviceId { get; }

    /// <summary><c>sensor/{id}/</c> in UTF-8.</summary>
    public byte[] SensorPrefix { get; }

    /// <summary><c>device/{id}/</c> in UTF-8.</summary>
    public byte[] DevicePrefix { get; }

    /// <summary><c>sensor/{id}/telemetry</c> in UTF-8: the seed's telemetry topic.</summary>
    public byte[] TelemetryTopic { get; }

    /// <summary>Whether the device's telemetry also updates its shadow's reported state (configured per device type).</summary>
    public bool TelemetryToReported { get; init; }

}
