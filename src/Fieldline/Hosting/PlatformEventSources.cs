using System.Text.Json.Nodes;
using Fieldline.Core;
using Fieldline.Core.Commands;
using Fieldline.Core.Events;
using Fieldline.Core.Shadows;

namespace Fieldline.Hosting;

/// <summary>
/// Turns the core services' change notifications into events on the <see cref="EventBus"/>, and publishes the
/// telemetry gathered by the <see cref="DataReceivedBatcher"/> once per window.
/// </summary>
internal sealed class PlatformEventSources(
    EventBus events, ShadowService shadows, CommandService commands, DataReceivedBatcher dataReceived, TimeProvider timeProvider) : BackgroundService
{
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        shadows.Changed += OnShadowChanged;
        commands.StateChanged += OnCommandStateChanged;
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        shadows.Changed -= OnShadowChanged;
        commands.StateChanged -= OnCommandStateChanged;

        // The listeners stopped first (they start later), so this last window holds everything accepted.
        dataReceived.Flush();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(dataReceived.Window, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                dataReceived.Flush();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void OnShadowChanged(ShadowChange change) => events.Publish(EventTypes.ShadowUpdated, "shadows", change.After.DeviceId, new JsonObject
    {
        ["device_id"] = change.After.DeviceId,
        ["version"] = change.After.Version,
        ["desired_changed"] = !JsonNode.DeepEquals(change.Before.Desired, change.After.Desired),
        ["reported_changed"] = !JsonNode.DeepEquals(change.Before.Reported, change.After.Reported),
        ["delta"] = change.After.Delta.DeepClone(),
    });

    private void OnCommandStateChanged(DeviceCommand command) => events.Publish(EventTypes.CommandStateChanged, "commands", command.DeviceId, new JsonObject
    {
        ["device_id"] = command.DeviceId,
        ["command_id"] = command.CommandId,
        ["type"] = command.Type,
        ["state"] = WireNames.Name(command.State),
        ["message"] = command.Message,
    });
}
