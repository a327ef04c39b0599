using System.Text.Json.Nodes;

namespace Fieldline.Core.Commands;

/// <summary>Where a command stands: pending → delivered (the device's PUBACK) → succeeded | failed (its response) | timed_out, or expired undelivered.</summary>
public enum CommandState
{
    Pending,
    Delivered,
    Succeeded,
    Failed,
    TimedOut,
    Expired,
}

/// <summary>
/// A command to a device, sent as the seed's <c>Command</c> JSON (<c>command_id</c>, <c>type</c>, <c>parameters</c>,
/// <c>timestamp</c>) on <c>device/{id}/command</c>; the device answers with the seed's <c>CommandResponse</c> on
/// <c>device/{id}/response</c>.
/// </summary>
public sealed record DeviceCommand
{
    public required string CommandId { get; init; }

    public required string DeviceId { get; init; }

    public required string Type { get; init; }

    public required JsonObject Parameters { get; init; }

    public required CommandState State { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Undelivered until then, the command expires.</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>How long the device has to respond once the command is delivered.</summary>
    public required TimeSpan Timeout { get; init; }

    public DateTimeOffset? DeliveredAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>The message of the device's response, or why the command ended without one.</summary>
    public string? Message { get; init; }

    public bool IsFinished => State is CommandState.Succeeded or CommandState.Failed or CommandState.TimedOut or CommandState.Expired;

    /// <summary>When the command ends if nothing else happens: expiry while pending, the response timeout once delivered.</summary>
    public DateTimeOffset? Deadline => State switch
    {
        CommandState.Pending => ExpiresAt,
        CommandState.Delivered => DeliveredAt!.Value + Timeout,
        _ => null,
    };

    /// <summary>The seed's Command JSON as sent to the device.</summary>
    public JsonObject ToWire() => new()
    {
        ["command_id"] = CommandId,
        ["type"] = Type,
        ["parameters"] = Parameters.DeepClone(),
        ["timestamp"] = CreatedAt.ToUnixTimeSeconds(),
    };
}

/// <summary>A page of a device's commands, newest first.</summary>
public sealed record CommandPage(IReadOnlyList<DeviceCommand> Commands, string? NextCursor);

/// <summary>Where commands are kept.</summary>
public interface ICommandStore
{
    Task CreateAsync(DeviceCommand command, CancellationToken cancellationToken);

    Task<DeviceCommand?> GetAsync(string commandId, CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="command"/> if its stored state is still <paramref name="expected"/>; false otherwise.</summary>
    Task<bool> TransitionAsync(DeviceCommand command, CommandState expected, CancellationToken cancellationToken);

    /// <summary>A device's commands, newest first, after <paramref name="cursor"/>.</summary>
    Task<CommandPage> ListAsync(string deviceId, int limit, string? cursor, CancellationToken cancellationToken);

    /// <summary>A device's pending commands, oldest first.</summary>
    Task<IReadOnlyList<DeviceCommand>> ListPendingAsync(string deviceId, CancellationToken cancellationToken);

    /// <summary>Pending or delivered commands whose deadline is at or before <paramref name="now"/>.</summary>
    Task<IReadOnlyList<DeviceCommand>> ListOverdueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);
}

/// <summary>How commands reach devices (the broker, in the host).</summary>
public interface ICommandTransport
{
    /// <summary>
    /// Sends the command to the device's command topic at QoS 1; <paramref name="delivered"/> is called when the
    /// device acknowledges it. A device that is offline or not subscribed does not get it now: the command stays
    /// pending and is sent again when the device subscribes to its command topic.
    /// </summary>
    void Send(DeviceCommand command, Action delivered);
}
