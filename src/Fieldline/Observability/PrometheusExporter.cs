using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Fieldline.Core.Observability;

namespace Fieldline.Observability;

/// <summary>
/// Renders every instrument of the meters named <c>Fieldline*</c> in the Prometheus text exposition format 0.0.4.
/// Counters become <c>NAME_total</c> counters, up-down counters and gauges become gauges, histograms become
/// <c>_bucket</c>/<c>_sum</c>/<c>_count</c>. Dots in names become underscores; tags become labels.
/// Meters created through this host's <see cref="IMeterFactory"/> are exported; so are unscoped meters.
/// Meters of other hosts in the same process (tests) are not.
/// </summary>
internal sealed class PrometheusExporter : IHostedService, IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>OpenTelemetry's default explicit bucket boundaries, used when an instrument gives no advice.</summary>
    private static readonly double[] s_defaultBuckets = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

    private readonly IMeterFactory _meterFactory;
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, MetricFamily> _families = new();
    private readonly Lock _scrapeLock = new();

    public PrometheusExporter(IMeterFactory meterFactory)
    {
        _meterFactory = meterFactory;
        _listener.InstrumentPublished = OnInstrumentPublished;
        _listener.MeasurementsCompleted = (instrument, _) => _families.TryRemove(instrument, out MetricFamily? _);
        _listener.SetMeasurementEventCallback<long>(static (i, m, t, s) => ((MetricFamily)s!).Record(m, t));
        _listener.SetMeasurementEventCallback<int>(static (i, m, t, s) => ((MetricFamily)s!).Record(m, t));
        _listener.SetMeasurementEventCallback<short>(static (i, m, t, s) => ((MetricFamily)s!).Record(m, t));
        _listener.SetMeasurementEventCallback<byte>(static (i, m, t, s) => ((MetricFamily)s!).Record(m, t));
        _listener.SetMeasurementEventCallback<double>(static (i, m, t, s) => ((MetricFamily)s!).Record(m, t));
        _listener.SetMeasurementEventCallback<float>(static (i, m, t, s) => ((MetricFamily)s!).Record(m, t));
        _listener.SetMeasurementEventCallback<decimal>(static (i, m, t, s) => ((MetricFamily)s!).Record((double)m, t));
    }

    /// <summary>Starts listening; measurements made before this are not counted, so the host starts it first.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The current values of all instruments, observable ones observed now.</summary>
    public string Scrape()
    {
        lock (_scrapeLock)
        {
            foreach (var family in _families.Values)
            {
                if (family.IsObservable)
                {
                    // Observable callbacks report the current value of every series; forget the series they no longer report.
                    family.Series.Clear();
                }
            }

            _listener.RecordObservableInstruments();
            var text = new StringBuilder(4096);
            foreach (var family in _families.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                family.WriteTo(text);
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        var meter = instrument.Meter;
        if (!meter.Name.StartsWith(MetricNames.MeterPrefix, StringComparison.Ordinal) ||
            (meter.Scope is not null && !ReferenceEquals(meter.Scope, _meterFactory)))
        {
            return;
        }

        var family = _families.GetOrAdd(instrument, static i => new MetricFamily(i, BucketsOf(i)));
        listener.EnableMeasurementEvents(instrument, family);
    }

    private static double[] BucketsOf(Instrument instrument)
    {
        IReadOnlyList<double>? advised = instrument switch
        {
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries,
            Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToList(),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToList(),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToList(),
            _ => null,
        };
        return advised is { Count: > 0 } ? [.. advised] : s_defaultBuckets;
    }

    internal static string SanitizeName(string name)
    {
        var builder = new StringBuilder(name.Length + 1);
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            builder.Append('_');
        }

        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_');
        }

        return builder.ToString();
    }

    internal static string FormatValue(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ when double.IsNaN(value) => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private enum Kind
    {
        Counter,
        Gauge,
        Histogram,
    }

    /// <summary>One instrument: its exported name and type and the series per distinct tag set.</summary>
    private sealed class MetricFamily
    {
        private readonly Kind _kind;
        private readonly bool _sumsMeasurements;
        private readonly double[] _buckets;
        private readonly string _help;

        public MetricFamily(Instrument instrument, double[] buckets)
        {
            var definition = instrument.GetType().GetGenericTypeDefinition();
            (_kind, _sumsMeasurements, IsObservable) = definition switch
            {
                _ when definition == typeof(Counter<>) => (Kind.Counter, true, false),
                _ when definition == typeof(UpDownCounter<>) => (Kind.Gauge, true, false),
                _ when definition == typeof(Histogram<>) => (Kind.Histogram, true, false),
                _ when definition == typeof(ObservableCounter<>) => (Kind.Counter, false, true),
                _ when definition == typeof(ObservableUpDownCounter<>) => (Kind.Gauge, false, true),
                _ when definition == typeof(ObservableGauge<>) => (Kind.Gauge, false, true),
                _ => (Kind.Gauge, false, false),
            };

            var name = SanitizeName(instrument.Name);
            Name = _kind == Kind.Counter && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
            _buckets = buckets;
            _help = (instrument.Description ?? instrument.Name).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
        }

        public string Name { get; }

        public bool IsObservable { get; }

        public ConcurrentDictionary<string, Series> Series { get; } = new(StringComparer.Ordinal);

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = tags.IsEmpty ? string.Empty : RenderLabels(tags);
            var series = Series.GetOrAdd(labels, static (_, buckets) => new Series(buckets), _kind == Kind.Histogram ? _buckets.Length : 0);
            lock (series)
            {
                if (_kind == Kind.Histogram)
                {
                    series.BucketCounts[BucketIndex(value)]++;
                    series.Sum += value;
                    series.Count++;
                }
                else if (_sumsMeasurements)
                {
                    series.Value += value;
                }
                else
                {
                    series.Value = value;
                }
            }
        }

        /// <summary>The first bucket whose upper bound is at least <paramref name="value"/>; the last index is +Inf.</summary>
        private int BucketIndex(double value)
        {
            var index = 0;
            while (index < _buckets.Length && value > _buckets[index])
            {
                index++;
            }

            return index;
        }

        public void WriteTo(StringBuilder text)
        {
            if (Series.IsEmpty)
            {
                return;
            }

            var type = _kind switch { Kind.Counter => "counter", Kind.Histogram => "histogram", _ => "gauge" };
            text.Append("# HELP ").Append(Name).Append(' ').Append(_help).Append('\n');
            text.Append("# TYPE ").Append(Name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, series) in Series.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                lock (series)
                {
                    if (_kind == Kind.Histogram)
                    {
                        WriteHistogram(text, labels, series);
                    }
                    else
                    {
                        WriteSample(text, Name, labels, series.Value);
                    }
                }
            }
        }

        private void WriteHistogram(StringBuilder text, string labels, Series series)
        {
            var prefix = labels.Length == 0 ? string.Empty : labels + ",";
            long cumulative = 0;
            for (var i = 0; i < _buckets.Length; i++)
            {
                cumulative += series.BucketCounts[i];
                WriteSample(text, Name + "_bucket", $"{prefix}le=\"{FormatValue(_buckets[i])}\"", cumulative);
            }

            WriteSample(text, Name + "_bucket", prefix + "le=\"+Inf\"", series.Count);
            WriteSample(text, Name + "_sum", labels, series.Sum);
            WriteSample(text, Name + "_count", labels, series.Count);
        }

        private static void WriteSample(StringBuilder text, string name, string labels, double value)
        {
            text.Append(name);
            if (labels.Length > 0)
            {
                text.Append('{').Append(labels).Append('}');
            }

            text.Append(' ').Append(FormatValue(value)).Append('\n');
        }

        /// <summary>Labels sorted by name, so the same tags in any order are the same series.</summary>
        private static string RenderLabels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var sorted = tags.ToArray();
            Array.Sort(sorted, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
            var text = new StringBuilder();
            foreach (var (key, value) in sorted)
            {
                if (text.Length > 0)
                {
                    text.Append(',');
                }

                var rendered = Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty;
                text.Append(SanitizeName(key)).Append("=\"")
                    .Append(rendered.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal))
                    .Append('"');
            }

            return text.ToString();
        }
    }

    /// <summary>The state of one labelled series; guarded by locking the instance.</summary>
    private sealed class Series(int bucketCount)
    {
        public double Value;
        public double Sum;
        public long Count;
        public readonly long[] BucketCounts = new long[bucketCount + 1];
    }
}
