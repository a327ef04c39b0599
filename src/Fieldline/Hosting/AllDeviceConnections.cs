using Fieldline.Core.Devices;

namespace Fieldline.Hosting;

/// <summary>The devices' connections over every protocol: revoking a device's access ends them all.</summary>
internal sealed class AllDeviceConnections(IReadOnlyList<IDeviceConnections> protocols) : IDeviceConnections
{
    public int Disconnect(string deviceId) => protocols.Sum(p => p.Disconnect(deviceId));
}
