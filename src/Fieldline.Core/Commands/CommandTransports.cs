namespace Fieldline.Core.Commands;

/// <summary>
/// Sends a command over every protocol a device may be listening on (MQTT's command topic, CoAP's observed
/// commands resource). Whichever delivers it first marks it delivered; the state's compare-and-set makes the others
/// no-ops.
/// </summary>
public sealed class CommandTransports(IEnumerable<ICommandTransport> transports) : ICommandTransport
{
    private readonly ICommandTransport[] _transports = [.. transports];

    /// <inheritdoc />
    public void Send(DeviceCommand command, Action delivered)
    {
        foreach (var transport in _transports)
        {
            transport.Send(command, delivered);
        }
    }
}
