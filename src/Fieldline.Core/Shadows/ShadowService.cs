using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Core.Observability;

namespace Fieldline.Core.Shadows;

/// <summary>Who writes to a shadow; it decides which sections may be written.</summary>
public enum ShadowWriter
{
    /// <summary>An operator or integration through the API: desired only.</summary>
    Operator,

    /// <summary>The device itself (its own topics): reported, and desired too, as AWS IoT allows.</summary>
    Device,

    /// <summary>An operator explicitly overriding what the device reported (and desired).</summary>
    AdminOverride,
}

/// <summary>How a shadow operation ended.</summary>
public enum ShadowStatus
{
    Ok,
    DeviceNotFound,
    VersionConflict,
    Invalid,
    TooLarge,
    Forbidden,
}

/// <summary>The outcome of a shadow operation: the shadow after it, or why it was refused.</summary>
/// <param name="Status">How it ended.</param>
/// <param name="Shadow">The shadow after the operation (as it stands when refused for a version conflict; null otherwise when refused).</param>
/// <param name="Message">Why it was refused.</param>
public sealed record ShadowOutcome(ShadowStatus Status, DeviceShadow? Shadow, string? Message = null)
{
    public bool Succeeded => Status == ShadowStatus.Ok;
}

/// <summary>An update of a shadow's sections; a section left null is not touched, <see cref="ClearDesired"/> empties desired.</summary>
/// <param name="Desired">Keys to merge into desired (null values remove keys).</param>
/// <param name="Reported">Keys to merge into reported.</param>
/// <param name="ClearDesired">Whether to empty desired before merging (<c>"desired": null</c>).</param>
/// <param name="ClearReported">Whether to empty reported before merging (<c>"reported": null</c>).</param>
public sealed record ShadowUpdate(JsonObject? Desired, JsonObject? Reported, bool ClearDesired = false, bool ClearReported = false);

/// <summary>A shadow changed: before and after.</summary>
public sealed record ShadowChange(DeviceShadow Before, DeviceShadow After);

/// <summary>
/// Reads and changes device shadows: merge updates, optimistic concurrency by version, limits, and who may write
/// which section. One change at a time per device in this process; the store's version check guards against other
/// processes.
/// </summary>
public sealed class ShadowService
{
    private const int LockStripes = 64;
    private const int MaximumAttempts = 3;

    private readonly IShadowStore _store;
    private readonly IDeviceRegistry _registry;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim[] _locks = [.. Enumerable.Range(0, LockStripes).Select(_ => new SemaphoreSlim(1, 1))];
    private readonly RecentShadows _recent;
    private readonly Counter<long> _updates;
    private readonly Histogram<double> _updateDuration;

    public ShadowService(IShadowStore store, IDeviceRegistry registry, TimeProvider timeProvider, ShadowLimits? limits = null, IMeterFactory? meterFactory = null)
    {
        _store = store;
        _registry = registry;
        _timeProvider = timeProvider;
        Limits = limits ?? new ShadowLimits();
        _recent = new RecentShadows(Limits.RememberedShadows);
        var meter = meterFactory?.Create(MetricNames.ShadowsMeter) ?? new Meter(MetricNames.ShadowsMeter);
        _updates = meter.CreateCounter<long>(
            MetricNames.ShadowUpdates, description: "Shadow updates by writer (operator, device, admin_override) and outcome (ok, or why refused)");
        _updateDuration = meter.CreateHistogram(
            MetricNames.ShadowUpdateDuration,
            unit: "s",
            description: "Time to apply and store a shadow update",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MetricNames.LatencyBuckets });
    }

    public ShadowLimits Limits { get; }

    /// <summary>Raised after a change is stored (not for updates that changed nothing). Handlers must not block.</summary>
    public event Action<ShadowChange>? Changed;

    public async Task<ShadowOutcome> GetAsync(string deviceId, CancellationToken cancellationToken)
    {
        if (await _registry.GetAsync(deviceId, cancellationToken).ConfigureAwait(false) is null)
        {
            return new ShadowOutcome(ShadowStatus.DeviceNotFound, null, $"No device has the id '{deviceId}'.");
        }

        return new ShadowOutcome(ShadowStatus.Ok, await LoadAsync(deviceId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Applies <paramref name="update"/> when the shadow's version is <paramref name="expectedVersion"/> (any when
    /// null). Every accepted update that changes something increments the version; one that changes nothing is
    /// accepted with the current version.
    /// </summary>
    public async Task<ShadowOutcome> UpdateAsync(string deviceId, ShadowUpdate update, ShadowWriter writer, long? expectedVersion, CancellationToken cancellationToken)
    {
        var started = _timeProvider.GetTimestamp();
        var outcome = await ApplyAsync(deviceId, update, writer, expectedVersion, cancellationToken).ConfigureAwait(false);
        var tags = new TagList { { "writer", WireNames.Name(writer) }, { "outcome", WireNames.Name(outcome.Status) } };
        _updates.Add(1, tags);
        _updateDuration.Record(_timeProvider.GetElapsedTime(started).TotalSeconds, tags);
        return outcome;
    }

    private async Task<ShadowOutcome> ApplyAsync(string deviceId, ShadowUpdate update, ShadowWriter writer, long? expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (writer == ShadowWriter.Operator && (update.Reported is not null || update.ClearReported))
        {
            return new ShadowOutcome(
                ShadowStatus.Forbidden, null, "The reported state is written by the device; an operator may change it only with the explicit admin override.");
        }

        if (update.Desired is null && update.Reported is null && !update.ClearDesired && !update.ClearReported)
        {
            return new ShadowOutcome(ShadowStatus.Invalid, null, "The update has neither state.desired nor state.reported.");
        }

        var gate = Lock(deviceId);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // First from what this process last wrote, which saves reading the shadow back before each write. The
            // conditional write below finds out when another writer (another instance, a deletion) changed it
            // since; then the stored shadow is read and, when the caller asked for no particular version, the
            // update is applied again to it.
            for (var attempt = 0; ; attempt++)
            {
                var cached = attempt == 0 ? _recent.Get(deviceId) : null;
                if (cached is null && await _registry.GetAsync(deviceId, cancellationToken).ConfigureAwait(false) is null)
                {
                    _recent.Forget(deviceId);
                    return new ShadowOutcome(ShadowStatus.DeviceNotFound, null, $"No device has the id '{deviceId}'.");
                }

                var before = cached is not null ? DeviceShadow.FromStored(cached) : await LoadAsync(deviceId, cancellationToken).ConfigureAwait(false);
                if (expectedVersion is { } expected && expected != before.Version)
                {
                    if (cached is not null)
                    {
                        continue;
                    }

                    return new ShadowOutcome(ShadowStatus.VersionConflict, before, $"The shadow is at version {before.Version}, not {expected}.");
                }

                var now = _timeProvider.GetUtcNow();
                var timestamp = now.ToUnixTimeSeconds();
                var desired = (JsonObject)before.Desired.DeepClone();
                var reported = (JsonObject)before.Reported.DeepClone();
                var desiredMetadata = (JsonObject)before.DesiredMetadata.DeepClone();
                var reportedMetadata = (JsonObject)before.ReportedMetadata.DeepClone();
                var changed = false;
                if (update.ClearDesired && desired.Count > 0)
                {
                    desired.Clear();
                    desiredMetadata.Clear();
                    changed = true;
                }

                if (update.ClearReported && reported.Count > 0)
                {
                    reported.Clear();
                    reportedMetadata.Clear();
                    changed = true;
                }

                changed |= update.Desired is not null && ShadowDocuments.Merge(desired, desiredMetadata, update.Desired, timestamp);
                changed |= update.Reported is not null && ShadowDocuments.Merge(reported, reportedMetadata, update.Reported, timestamp);
                if (!changed)
                {
                    return new ShadowOutcome(ShadowStatus.Ok, before);
                }

                if (CheckLimits(desired, reported) is { } refusal)
                {
                    return refusal;
                }

                var after = new DeviceShadow(deviceId, before.Version + 1, desired, reported, desiredMetadata, reportedMetadata, now);
                var stored = new StoredShadow(deviceId, after.Version, after.ToStoredJson(), now);
                if (!await _store.SaveAsync(stored, before.Version, cancellationToken).ConfigureAwait(false))
                {
                    _recent.Forget(deviceId);
                    if (expectedVersion is null && attempt < MaximumAttempts - 1)
                    {
                        continue;
                    }

                    var current = await LoadAsync(deviceId, cancellationToken).ConfigureAwait(false);
                    return new ShadowOutcome(ShadowStatus.VersionConflict, current, $"The shadow was changed meanwhile (now version {current.Version}); read it and try again.");
                }

                _recent.Remember(stored);
                Changed?.Invoke(new ShadowChange(before, after));
                return new ShadowOutcome(ShadowStatus.Ok, after);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Forgets what this process remembers of a device's shadow; called when the device is deleted, so that a device
    /// registered again under the same id starts from its own (empty) shadow.
    /// </summary>
    public void Forget(string deviceId) => _recent.Forget(deviceId);

    /// <summary>Removes a device's shadow (desired, reported and version); the next write starts again at version 1.</summary>
    public async Task<ShadowOutcome> DeleteAsync(string deviceId, long? expectedVersion, CancellationToken cancellationToken)
    {
        if (await _registry.GetAsync(deviceId, cancellationToken).ConfigureAwait(false) is null)
        {
            return new ShadowOutcome(ShadowStatus.DeviceNotFound, null, $"No device has the id '{deviceId}'.");
        }

        var gate = Lock(deviceId);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var before = await LoadAsync(deviceId, cancellationToken).ConfigureAwait(false);
            if (expectedVersion is { } expected && expected != before.Version)
            {
                return new ShadowOutcome(ShadowStatus.VersionConflict, before, $"The shadow is at version {before.Version}, not {expected}.");
            }

            var after = DeviceShadow.Empty(deviceId);
            _recent.Forget(deviceId);
            if (await _store.DeleteAsync(deviceId, cancellationToken).ConfigureAwait(false))
            {
                Changed?.Invoke(new ShadowChange(before, after));
            }

            return new ShadowOutcome(ShadowStatus.Ok, after);
        }
        finally
        {
            gate.Release();
        }
    }

    private ShadowOutcome? CheckLimits(JsonObject desired, JsonObject reported)
    {
        var bytes = Encoding.UTF8.GetByteCount(desired.ToJsonString()) + Encoding.UTF8.GetByteCount(reported.ToJsonString());
        if (bytes > Limits.MaximumStateBytes)
        {
            return new ShadowOutcome(ShadowStatus.TooLarge, null, $"The shadow's state would be {bytes} bytes; at most {Limits.MaximumStateBytes} are allowed.");
        }

        var depth = Math.Max(ShadowDocuments.Depth(desired), ShadowDocuments.Depth(reported));
        if (depth > Limits.MaximumDepth)
        {
            return new ShadowOutcome(ShadowStatus.Invalid, null, $"The shadow's state would nest {depth} levels deep; at most {Limits.MaximumDepth} are allowed.");
        }

        var keys = ShadowDocuments.KeyCount(desired) + ShadowDocuments.KeyCount(reported);
        if (keys > Limits.MaximumKeys)
        {
            return new ShadowOutcome(ShadowStatus.TooLarge, null, $"The shadow's state would have {keys} keys; at most {Limits.MaximumKeys} are allowed.");
        }

        return null;
    }

    private async Task<DeviceShadow> LoadAsync(string deviceId, CancellationToken cancellationToken) =>
        await _store.GetAsync(deviceId, cancellationToken).ConfigureAwait(false) is { } stored
            ? DeviceShadow.FromStored(stored)
            : DeviceShadow.Empty(deviceId);

    private SemaphoreSlim Lock(string deviceId) => _locks[(uint)StringComparer.Ordinal.GetHashCode(deviceId) % LockStripes];
}
