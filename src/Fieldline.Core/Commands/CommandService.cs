using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Core.Observability;

namespace Fieldline.Core.Commands;

/// <summary>What became of a request to the command service.</summary>
public enum CommandStatus
{
    Ok,
    DeviceNotFound,
    NotFound,
    Invalid,
}

/// <summary>The outcome of a command operation.</summary>
public sealed record CommandOutcome(CommandStatus Status, DeviceCommand? Command, string? Message = null);

/// <summary>A device's answer, as the seed's CommandResponse: <c>{"command_id","status":"success"|"failed","message","timestamp"}</c>.</summary>
public sealed record CommandResponse(string CommandId, bool Success, string? Message);

/// <summary>
/// Creates commands, sends them, follows their state (pending → delivered → succeeded | failed | timed_out, or
/// expired) and lets callers wait for the outcome. State is in the store, changed by compare-and-set so that each
/// command ends once; waiters and timers are in memory.
/// </summary>
public sealed class CommandService
{
    /// <summary>Longest response timeout a command may ask for.</summary>
    public static readonly TimeSpan MaximumTimeout = TimeSpan.FromHours(24);

    /// <summary>Longest a command may wait undelivered.</summary>
    public static readonly TimeSpan MaximumExpiry = TimeSpan.FromDays(7);

    private readonly ICommandStore _store;
    private readonly IDeviceRegistry _registry;
    private readonly ICommandTransport _transport;
    private readonly TimeProvider _timeProvider;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<DeviceCommand>> _waiters = new(StringComparer.Ordinal);
    private readonly Counter<long> _states;
    private readonly Histogram<double> _duration;

    public CommandService(ICommandStore store, IDeviceRegistry registry, ICommandTransport transport, TimeProvider timeProvider, IMeterFactory? meterFactory = null)
    {
        _store = store;
        _registry = registry;
        _transport = transport;
        _timeProvider = timeProvider;
        var meter = meterFactory?.Create(MetricNames.CommandsMeter) ?? new Meter(MetricNames.CommandsMeter);
        _states = meter.CreateCounter<long>(MetricNames.CommandStates, description: "Command state changes by the state entered; pending counts the commands created");
        _duration = meter.CreateHistogram(
            MetricNames.CommandDuration,
            unit: "s",
            description: "Time from a command's creation to its outcome, by final state",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MetricNames.LatencyBuckets });
    }

    /// <summary>Raised after a command's state changed in the store. Handlers must not block.</summary>
    public event Action<DeviceCommand>? StateChanged;

    public async Task<CommandOutcome> CreateAsync(string deviceId, string type, JsonObject? parameters, TimeSpan timeout, TimeSpan expiresIn, CancellationToken cancellationToken)
    {
        if (await _registry.GetAsync(deviceId, cancellationToken).ConfigureAwait(false) is null)
        {
            return new CommandOutcome(CommandStatus.DeviceNotFound, null, $"No device has the id '{deviceId}'.");
        }

        var now = _timeProvider.GetUtcNow();
        var command = new DeviceCommand
        {
            CommandId = "cmd-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)),
            DeviceId = deviceId,
            Type = type,
            Parameters = parameters ?? [],
            State = CommandState.Pending,
            CreatedAt = now,
            ExpiresAt = now + expiresIn,
            Timeout = timeout,
        };
        await _store.CreateAsync(command, cancellationToken).ConfigureAwait(false);
        Record(command);
        StateChanged?.Invoke(command);
        Send(command);
        return new CommandOutcome(CommandStatus.Ok, command);
    }

    public async Task<CommandOutcome> GetAsync(string deviceId, string commandId, CancellationToken cancellationToken)
    {
        var command = await _store.GetAsync(commandId, cancellationToken).ConfigureAwait(false);
        return command is null || command.DeviceId != deviceId
            ? new CommandOutcome(CommandStatus.NotFound, null, $"Device '{deviceId}' has no command '{commandId}'.")
            : new CommandOutcome(CommandStatus.Ok, command);
    }

    /// <summary>The command once it has finished, or as it stands when <paramref name="maximumWait"/> has passed.</summary>
    public async Task<CommandOutcome> WaitAsync(string deviceId, string commandId, TimeSpan maximumWait, CancellationToken cancellationToken)
    {
        var waiter = _waiters.GetOrAdd(commandId, _ => new TaskCompletionSource<DeviceCommand>(TaskCreationOptions.RunContinuationsAsynchronously));
        var outcome = await GetAsync(deviceId, commandId, cancellationToken).ConfigureAwait(false);
        if (outcome.Command is not { IsFinished: false } command)
        {
            _waiters.TryRemove(commandId, out _);
            return outcome;
        }

        var wait = command.Deadline is { } deadline ? Min(maximumWait, deadline - _timeProvider.GetUtcNow() + TimeSpan.FromSeconds(1)) : maximumWait;
        try
        {
            var finished = await waiter.Task.WaitAsync(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, _timeProvider, cancellationToken).ConfigureAwait(false);
            return new CommandOutcome(CommandStatus.Ok, finished);
        }
        catch (TimeoutException)
        {
            return await GetAsync(deviceId, commandId, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<CommandPage> ListAsync(string deviceId, int limit, string? cursor, CancellationToken cancellationToken) =>
        _store.ListAsync(deviceId, limit, cursor, cancellationToken);

    /// <summary>The device subscribed to its command topic: its pending commands are sent (again), oldest first.</summary>
    public async Task SendPendingAsync(string deviceId, CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        foreach (var command in await _store.ListPendingAsync(deviceId, cancellationToken).ConfigureAwait(false))
        {
            if (command.ExpiresAt > now)
            {
                Send(command);
            }
        }
    }

    /// <summary>The device's pending commands that have not expired, oldest first (for a device that asks for them).</summary>
    public async Task<IReadOnlyList<DeviceCommand>> ListPendingAsync(string deviceId, CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        return [.. (await _store.ListPendingAsync(deviceId, cancellationToken).ConfigureAwait(false)).Where(c => c.ExpiresAt > now)];
    }

    /// <summary>Records a device's response; false when it names no open command of this device.</summary>
    public async Task<bool> RespondAsync(string deviceId, CommandResponse response, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(response);
        var command = await _store.GetAsync(response.CommandId, cancellationToken).ConfigureAwait(false);
        if (command is null || command.DeviceId != deviceId || command.IsFinished)
        {
            return false;
        }

        // A response proves delivery even when the PUBACK was not seen (for example across a restart).
        var now = _timeProvider.GetUtcNow();
        var finished = command with
        {
            State = response.Success ? CommandState.Succeeded : CommandState.Failed,
            DeliveredAt = command.DeliveredAt ?? now,
            CompletedAt = now,
            Message = response.Message,
        };
        return await TransitionAsync(finished, command.State, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the commands whose deadline passed: expired while pending, timed out once delivered.</summary>
    public async Task<int> ExpireOverdueAsync(CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        var ended = 0;
        foreach (var command in await _store.ListOverdueAsync(now, 1000, cancellationToken).ConfigureAwait(false))
        {
            var finished = command.State == CommandState.Pending
                ? command with { State = CommandState.Expired, CompletedAt = now, Message = "Not delivered before the command expired." }
                : command with { State = CommandState.TimedOut, CompletedAt = now, Message = $"No response within {command.Timeout.TotalSeconds:0} s of delivery." };
            if (await TransitionAsync(finished, command.State, cancellationToken).ConfigureAwait(false))
            {
                ended++;
            }
        }

        return ended;
    }

    private void Send(DeviceCommand command) => _transport.Send(command, () => _ = MarkDeliveredAsync(command));

    /// <summary>
    /// The device has <paramref name="command"/>, sent while it was pending (it acknowledged it, or took it in an answer). The store's compare-and-set on
    /// the state makes this a no-op when the command moved on meanwhile (answered, expired), so it is not read back.
    /// </summary>
    public Task<bool> MarkDeliveredAsync(DeviceCommand command) =>
        TransitionAsync(command with { State = CommandState.Delivered, DeliveredAt = _timeProvider.GetUtcNow() }, CommandState.Pending, CancellationToken.None);

    private async Task<bool> TransitionAsync(DeviceCommand command, CommandState expected, CancellationToken cancellationToken)
    {
        if (!await _store.TransitionAsync(command, expected, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        Record(command);
        StateChanged?.Invoke(command);
        if (command.IsFinished && _waiters.TryRemove(command.CommandId, out var waiter))
        {
            waiter.TrySetResult(command);
        }

        return true;
    }

    private void Record(DeviceCommand command)
    {
        var state = new KeyValuePair<string, object?>("state", WireNames.Name(command.State));
        _states.Add(1, state);
        if (command is { IsFinished: true, CompletedAt: { } completed })
        {
            _duration.Record((completed - command.CreatedAt).TotalSeconds, state);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
