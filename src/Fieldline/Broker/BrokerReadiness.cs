using Fieldline.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Fieldline.Broker;

/// <summary>/ready reports the broker ready once Kestrel has bound its listeners (the MQTT one among them).</summary>
internal sealed class BrokerReadiness(IServer server) : IReadinessCheck
{
    public string Name => "mqtt_broker";

    public bool IsReady => server.Features.Get<IServerAddressesFeature>()?.Addresses.Count >= 2;
}
