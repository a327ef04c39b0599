using Fieldline.Core.ServiceAccounts;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Server;

namespace Fieldline.Broker;

/// <summary>
/// The MQTT connections of service accounts. Revoked credentials close with 5.0 reason Not authorized, changed
/// rules with Administrative action (the client may reconnect and gets the new rules); 3.1.1 clients are just closed.
/// </summary>
internal sealed class BrokerServiceAccountConnections(MqttBroker broker) : IServiceAccountConnections
{
    public int Disconnect(string username, ServiceAccountChange change) =>
        broker.DisconnectWhere(
            client => client.Identity is ServiceAccountIdentity account && account.Username == username,
            change == ServiceAccountChange.CredentialsRevoked ? MqttReasonCode.NotAuthorized : MqttReasonCode.AdministrativeAction);
}
