namespace Fieldline.Core.Devices;

/// <summary>
/// The live connections of devices, over whatever protocol. The registry's changes that revoke access
/// (delete, token rotation, maintenance) close them, since a connection authenticated before the change
/// would otherwise keep its rights.
/// </summary>
public interface IDeviceConnections
{
    /// <summary>Closes every connection of the device; returns how many there were.</summary>
    int Disconnect(string deviceId);
}
