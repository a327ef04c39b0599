using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Fieldline.Core.Telemetry;

namespace Fieldline.Core.Events;

/// <summary>
/// Turns accepted telemetry into <see cref="EventTypes.DataReceived"/> events: one per device per window, not one
/// per point, carrying how many messages and points arrived and the latest value of each metric.
/// </summary>
/// <remarks>
/// Design note. <see cref="Record"/> runs on the ingest path of every telemetry message, so it only counts and
/// overwrites: a dictionary lookup, a lock that only the flush contends for, and per-metric slots that are reused
/// from window to window, so a steady stream allocates nothing. <see cref="Flush"/> (every
/// <see cref="Window"/>, from a timer) builds the events and forgets devices that sent nothing in the window; a
/// device's window is detached under its lock so a concurrent <see cref="Record"/> never writes into a forgotten one.
/// </remarks>
public sealed class DataReceivedBatcher
{
    /// <summary>At most this many metrics' latest values are carried per device and window.</summary>
    public const int MaximumMetrics = 64;

    private readonly ConcurrentDictionary<string, DeviceWindow> _windows = new(StringComparer.Ordinal);
    private readonly EventBus _events;

    /// <summary>Creates the batcher; <paramref name="window"/> is how long data is gathered per event.</summary>
    public DataReceivedBatcher(EventBus events, TimeSpan window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        _events = events;
        Window = window;
    }

    /// <summary>How long the data of one device is gathered into one event.</summary>
    public TimeSpan Window { get; }

    /// <summary>Counts one accepted telemetry message of <paramref name="deviceId"/> with its points.</summary>
    public void Record(string deviceId, ReadOnlySpan<TelemetryPoint> points)
    {
        while (true)
        {
            var window = _windows.GetOrAdd(deviceId, static _ => new DeviceWindow());
            lock (window)
            {
                if (window.Detached)
                {
                    continue;
                }

                window.Add(points);
                return;
            }
        }
    }

    /// <summary>Publishes one event per device that sent data since the last flush; returns how many.</summary>
    public int Flush()
    {
        var published = 0;
        foreach (var (deviceId, window) in _windows)
        {
            JsonObject? payload;
            lock (window)
            {
                if (window.Messages == 0)
                {
                    // Idle for a whole window: forget it (a later message starts a new one).
                    window.Detached = true;
                    _windows.TryRemove(new KeyValuePair<string, DeviceWindow>(deviceId, window));
                    continue;
                }

                payload = window.TakePayload(deviceId);
            }

            _events.Publish(EventTypes.DataReceived, "telemetry", deviceId, payload);
            published++;
        }

        return published;
    }

    private sealed class DeviceWindow
    {
        private readonly Dictionary<string, MetricSample> _latest = new(StringComparer.Ordinal);

        public bool Detached { get; set; }

        public long Messages { get; private set; }

        private long _points;
        private long _firstMs = long.MaxValue;
        private long _lastMs = long.MinValue;
        private long _metricsDropped;

        public void Add(ReadOnlySpan<TelemetryPoint> points)
        {
            Messages++;
            _points += points.Length;
            foreach (ref readonly var point in points)
            {
                _firstMs = Math.Min(_firstMs, point.TimestampMs);
                _lastMs = Math.Max(_lastMs, point.TimestampMs);
                if (_latest.TryGetValue(point.Metric, out var sample))
                {
                    if (point.TimestampMs >= sample.TimestampMs)
                    {
                        _latest[point.Metric] = new MetricSample(point.Value, point.TimestampMs, point.Unit);
                    }
                }
                else if (_latest.Count < MaximumMetrics)
                {
                    _latest.Add(point.Metric, new MetricSample(point.Value, point.TimestampMs, point.Unit));
                }
                else
                {
                    _metricsDropped++;
                }
            }
        }

        public JsonObject TakePayload(string deviceId)
        {
            var metrics = new JsonObject();
            foreach (var (metric, sample) in _latest)
            {
                var value = new JsonObject { ["value"] = sample.Value, ["timestamp"] = FormatTimestamp(sample.TimestampMs) };
                if (sample.Unit is not null)
                {
                    value["unit"] = sample.Unit;
                }

                metrics[metric] = value;
            }

            var payload = new JsonObject
            {
                ["device_id"] = deviceId,
                ["messages"] = Messages,
                ["points"] = _points,
                ["first_timestamp"] = _points == 0 ? null : FormatTimestamp(_firstMs),
                ["last_timestamp"] = _points == 0 ? null : FormatTimestamp(_lastMs),
                ["metrics"] = metrics,
            };
            if (_metricsDropped > 0)
            {
                payload["points_of_metrics_not_shown"] = _metricsDropped;
            }

            Messages = 0;
            _points = 0;
            _firstMs = long.MaxValue;
            _lastMs = long.MinValue;
            _metricsDropped = 0;
            _latest.Clear();
            return payload;
        }

        private static string FormatTimestamp(long unixMs) =>
            DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
    }

    private readonly record struct MetricSample(double Value, long TimestampMs, string? Unit);
}
