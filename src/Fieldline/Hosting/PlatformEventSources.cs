using System.Text.Json.Nodes;
using Fieldline.Apis;
using Fieldline.Core.Commands;
using Fieldline.Core.Events;
using Fieldline.Core.Shadows;

namespace Fieldline.Hosting;

/// <summary>Turns the core services' change notifications into events on the <see cref="EventBus"/>.</summary>
internal sealed class PlatformEventSources(EventBus events, ShadowService shadows, CommandService commands) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        shadows.Changed += OnShadowChanged;
        commands.StateChanged += OnCommandStateChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        shadows.Changed -= OnShadowChanged;
        commands.StateChanged -= OnCommandStateChanged;
        return Task.CompletedTask;
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
        ["state"] = WireEnum<CommandState>.Name(command.State),
        ["message"] = command.Message,
    });
}
