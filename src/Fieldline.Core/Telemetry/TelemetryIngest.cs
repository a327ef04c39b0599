using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using Fieldline.Core.Events;
using Fieldline.Core.Observability;
using Microsoft.Extensions.Logging;

namespace Fieldline.Core.Telemetry;

/// <summary>
/// The protocol-neutral entry of telemetry: parses a device's payload and hands its points to the pipeline.
/// A protocol acknowledges the message when the returned task completes, which is when the points are durable.
/// </summary>
public sealed partial class TelemetryIngest : IDisposable
{
    [ThreadStatic]
    private static List<TelemetryPoint>? t_points;

    private readonly TelemetryPayloadParser _parser;
    private readonly SenmlPayloadParser _senml;
    private readonly TelemetryPipeline _pipeline;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<TelemetryIngest> _logger;
    private readonly DataReceivedBatcher? _dataReceived;
    private readonly LiveTelemetry? _live;
    private readonly ConcurrentDictionary<string, long> _lastRejectionLog = new(StringComparer.Ordinal);
    private readonly Meter _meter;
    private readonly Counter<long> _pointsReceived;
    private readonly Counter<long> _payloadsRejected;

    /// <summary>
    /// Creates the ingest stage; accepted messages are also counted into <paramref name="dataReceived"/> and, once
    /// durable, passed to the watchers of <paramref name="live"/>, when given.
    /// </summary>
    public TelemetryIngest(
        TelemetryPayloadParser parser,
        TelemetryPipeline pipeline,
        TimeProvider timeProvider,
        ILogger<TelemetryIngest> logger,
        IMeterFactory? meterFactory = null,
        DataReceivedBatcher? dataReceived = null,
        SenmlPayloadParser? senml = null,
        LiveTelemetry? live = null)
    {
        _live = live;
        _senml = senml ?? new SenmlPayloadParser();
        _dataReceived = dataReceived;
        _parser = parser;
        _pipeline = pipeline;
        _timeProvider = timeProvider;
        _logger = logger;
        _meter = meterFactory?.Create(MetricNames.TelemetryIngestMeter) ?? new Meter(MetricNames.TelemetryIngestMeter);
        _pointsReceived = _meter.CreateCounter<long>(MetricNames.DeviceDataReceived, description: "Telemetry points received from devices");
        _payloadsRejected = _meter.CreateCounter<long>("fieldline.telemetry.payloads_rejected", description: "Telemetry payloads refused as invalid");
    }

    /// <summary>
    /// Parses and submits a payload. Returns false with an error when the payload is invalid (no point of it is
    /// kept); otherwise <paramref name="durable"/> completes when all its points are durable.
    /// </summary>
    public bool TryIngest(string deviceId, ReadOnlyMemory<byte> payload, out Task? durable, out string? error) =>
        TryIngest(deviceId, payload, out durable, out error, parsed: null);

    /// <summary>As <see cref="TryIngest(string, ReadOnlyMemory{byte}, out Task?, out string?)"/>, also adding the points it parsed to <paramref name="parsed"/>.</summary>
    public bool TryIngest(string deviceId, ReadOnlyMemory<byte> payload, out Task? durable, out string? error, List<TelemetryPoint>? parsed) =>
        TryIngest(deviceId, payload, TelemetryPayloadFormat.Json, out durable, out error, parsed);

    /// <summary>As <see cref="TryIngest(string, ReadOnlyMemory{byte}, out Task?, out string?)"/>, for a payload in <paramref name="format"/>.</summary>
    public bool TryIngest(string deviceId, ReadOnlyMemory<byte> payload, TelemetryPayloadFormat format, out Task? durable, out string? error, List<TelemetryPoint>? parsed = null)
    {
        var points = t_points ??= new List<TelemetryPoint>(64);
        points.Clear();
        var nowMs = _timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        var valid = format == TelemetryPayloadFormat.Json
            ? _parser.TryParse(deviceId, new ReadOnlySequence<byte>(payload), nowMs, points, out error)
            : _senml.TryParse(deviceId, payload.Span, format, nowMs, points, out error);
        if (!valid)
        {
            durable = null;
            _payloadsRejected.Add(1);
            LogRejectedAtMostOncePerMinute(deviceId, error ?? "invalid payload");
            return false;
        }

        _pointsReceived.Add(points.Count);
        parsed?.AddRange(points);
        durable = _pipeline.Submit(CollectionsMarshal.AsSpan(points));
        _dataReceived?.Record(deviceId, CollectionsMarshal.AsSpan(points));
        _live?.Publish(deviceId, CollectionsMarshal.AsSpan(points), durable);
        points.Clear();
        return true;
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();

    private void LogRejectedAtMostOncePerMinute(string deviceId, string error)
    {
        var now = _timeProvider.GetTimestamp();
        var last = _lastRejectionLog.GetOrAdd(deviceId, 0);
        if (last != 0 && _timeProvider.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1))
        {
            return;
        }

        _lastRejectionLog[deviceId] = now;
        LogPayloadRejected(_logger, deviceId, error);
    }

    [LoggerMessage(LogLevel.Warning, "Telemetry from device {DeviceId} refused: {Error} (logged at most once a minute per device)")]
    private static partial void LogPayloadRejected(ILogger logger, string deviceId, string error);
}
