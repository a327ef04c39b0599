using System.Diagnostics.Metrics;
using Fieldline.Core.Observability;
using Fieldline.Observability;
using Microsoft.Extensions.DependencyInjection;

namespace Fieldline.Tests.Observability;

public sealed class PrometheusExporterTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly PrometheusExporter _exporter;
    private readonly IMeterFactory _meterFactory;

    public PrometheusExporterTests()
    {
        _meterFactory = _services.GetRequiredService<IMeterFactory>();
        _exporter = new PrometheusExporter(_meterFactory);
        _exporter.StartAsync(default).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        _exporter.Dispose();
        _services.Dispose();
    }

    [Fact]
    public void A_counter_is_exported_with_the_total_suffix()
    {
        var meter = _meterFactory.Create(MetricNames.MqttMeter);
        var received = meter.CreateCounter<long>(MetricNames.MqttMessagesReceived, description: "PUBLISH packets received.");
        received.Add(3);
        received.Add(2);

        var text = _exporter.Scrape();

        Assert.Contains("# HELP iot_mqtt_messages_received_total PUBLISH packets received.\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE iot_mqtt_messages_received_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("iot_mqtt_messages_received_total 5\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Dots_become_underscores_and_tags_become_sorted_escaped_labels()
    {
        var meter = _meterFactory.Create("Fieldline.Telemetry");
        var counter = meter.CreateUpDownCounter<int>("fieldline.pipeline.queue");
        counter.Add(4, new("z", "last"), new("a", "say \"hi\""));
        counter.Add(-1, new("a", "say \"hi\""), new("z", "last"));

        var text = _exporter.Scrape();

        Assert.Contains("# TYPE fieldline_pipeline_queue gauge\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_pipeline_queue{a=\"say \\\"hi\\\"\",z=\"last\"} 3\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_histogram_has_cumulative_buckets_sum_and_count()
    {
        var meter = _meterFactory.Create("Fieldline.Test");
        var histogram = meter.CreateHistogram<double>("fieldline.latency", unit: "ms", description: null, tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 10] });
        histogram.Record(0.5);
        histogram.Record(5);
        histogram.Record(50);

        var text = _exporter.Scrape();

        Assert.Contains("# TYPE fieldline_latency histogram\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_latency_bucket{le=\"1\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_latency_bucket{le=\"10\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_latency_bucket{le=\"+Inf\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_latency_sum 55.5\n", text, StringComparison.Ordinal);
        Assert.Contains("fieldline_latency_count 3\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Observable_gauges_report_their_current_value()
    {
        var meter = _meterFactory.Create("Fieldline.Test");
        var value = 1;
        meter.CreateObservableGauge("fieldline.depth", () => value);

        Assert.Contains("fieldline_depth 1\n", _exporter.Scrape(), StringComparison.Ordinal);
        value = 7;
        Assert.Contains("fieldline_depth 7\n", _exporter.Scrape(), StringComparison.Ordinal);
    }

    [Fact]
    public void Meters_of_other_prefixes_and_other_hosts_are_not_exported()
    {
        using var foreign = new Meter("Other.Library");
        foreign.CreateCounter<long>("other_counter").Add(1);
        using var otherServices = new ServiceCollection().AddMetrics().BuildServiceProvider();
        otherServices.GetRequiredService<IMeterFactory>().Create("Fieldline.Mqtt").CreateCounter<long>("other_host_counter").Add(1);

        var text = _exporter.Scrape();

        Assert.DoesNotContain("other_counter", text, StringComparison.Ordinal);
        Assert.DoesNotContain("other_host_counter", text, StringComparison.Ordinal);
    }
}
