namespace Fieldline.Observability;

/// <summary>Messages per second into and out of the platform over one sampling interval ending at <see cref="Time"/> (Unix ms).</summary>
internal sealed record TrafficSample(long Time, double In, double Out);

/// <summary>
/// Messages per second in and out of the platform, sampled every second, the last 15 minutes kept: what the console's
/// overview draws and <c>/api/v1/system/stats</c> serves. In counts MQTT PUBLISH packets received and CoAP messages
/// received; out counts PUBLISH packets delivered and CoAP messages sent.
/// </summary>
/// <remarks>
/// Sampling reads two running totals once a second, whatever the message rate, so the hot paths only keep the
/// counters they already had. Rates come from the totals' differences over the time that really passed, so a late
/// tick does not show as a spike.
/// </remarks>
internal sealed class TrafficHistory : BackgroundService
{
    /// <summary>How often the totals are sampled.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>Samples kept: 15 minutes of one a second.</summary>
    public const int Capacity = 900;

    private readonly TimeProvider _timeProvider;
    private readonly Func<(long Received, long Sent)> _totals;
    private readonly TrafficSample[] _ring = new TrafficSample[Capacity];
    private readonly Lock _lock = new();
    private int _next;
    private int _count;
    private (long Received, long Sent) _lastTotals;
    private long _lastTimestamp;

    /// <summary>Samples <paramref name="totals"/>: the running totals of messages received and sent.</summary>
    public TrafficHistory(TimeProvider timeProvider, Func<(long Received, long Sent)> totals)
    {
        _timeProvider = timeProvider;
        _totals = totals;
        _lastTotals = totals();
        _lastTimestamp = timeProvider.GetTimestamp();
    }

    /// <summary>The samples taken after <paramref name="afterTime"/> (Unix ms), oldest first.</summary>
    public IReadOnlyList<TrafficSample> Since(long afterTime)
    {
        lock (_lock)
        {
            var samples = new List<TrafficSample>(Math.Min(_count, 64));
            for (var i = 0; i < _count; i++)
            {
                var sample = _ring[(_next - _count + i + Capacity) % Capacity];
                if (sample.Time > afterTime)
                {
                    samples.Add(sample);
                }
            }

            return samples;
        }
    }

    /// <summary>Takes one sample now: the rates since the previous one.</summary>
    internal void Sample()
    {
        var totals = _totals();
        var now = _timeProvider.GetTimestamp();
        var seconds = _timeProvider.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
        if (seconds <= 0)
        {
            return;
        }

        var sample = new TrafficSample(
            _timeProvider.GetUtcNow().ToUnixTimeMilliseconds(),
            Math.Max(0, totals.Received - _lastTotals.Received) / seconds,
            Math.Max(0, totals.Sent - _lastTotals.Sent) / seconds);
        _lastTotals = totals;
        _lastTimestamp = now;
        lock (_lock)
        {
            _ring[_next] = sample;
            _next = (_next + 1) % Capacity;
            _count = Math.Min(_count + 1, Capacity);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, _timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Sample();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
