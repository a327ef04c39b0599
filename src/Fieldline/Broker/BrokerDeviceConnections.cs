using Fieldline.Core.Devices;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;

namespace Fieldline.Broker;

/// <summary>The MQTT connections of devices, closed with 5.0 reason Not authorized (3.1.1 clients are just closed).</summary>
internal sealed class BrokerDeviceConnections(MqttBroker broker) : IDeviceConnections
{
    public int Disconnect(string deviceId) =>
        broker.DisconnectWhere(client => client.Identity is DeviceIdentity device && device.DeviceId == deviceId, MqttReasonCode.NotAuthorized);
}
