using System.Buffers;
using System.Text;
using Fieldline.Core.Telemetry;

namespace Fieldline.Core.Tests.Telemetry;

public sealed class TelemetryPayloadParserTests
{
    private const long Now = 1_732_550_100_000;
    private readonly TelemetryPayloadParser parser = new();

    private static ReadOnlySequence<byte> Bytes(string json) => new(Encoding.UTF8.GetBytes(json));

    private List<TelemetryPoint> ParseValid(string json, string deviceId = "dev1")
    {
        var output = new List<TelemetryPoint>();
        var ok = parser.TryParse(deviceId, Bytes(json), Now, output, out var error);
        Assert.True(ok, $"expected {json} to parse, got error: {error}");
        Assert.Null(error);
        return output;
    }

    private string ParseInvalid(string json, string deviceId = "dev1", TelemetryPayloadParser? with = null)
    {
        var output = new List<TelemetryPoint> { new("other", "kept", 1, 1) };
        var ok = (with ?? parser).TryParse(deviceId, Bytes(json), Now, output, out var error);
        Assert.False(ok, $"expected {json} to be rejected, but it parsed into {output.Count - 1} points");
        Assert.NotNull(error);
        Assert.Single(output);
        return error!;
    }

    [Fact]
    public void Seed_single_object_becomes_one_point()
    {
        var points = ParseValid("""{"sensor_id":"dev1","type":"temperature","value":21.5,"unit":"°C","location":"hall","timestamp":1732550000}""");
        Assert.Equal([new TelemetryPoint("dev1", "temperature", 1_732_550_000_000, 21.5, "°C")], points);
    }

    [Fact]
    public void Multi_value_object_shares_its_timestamp()
    {
        var points = ParseValid("""{"ts": 1732550000123, "values": {"temperature": 21.5, "humidity": 40}}""");
        Assert.Equal(
            [new TelemetryPoint("dev1", "temperature", 1_732_550_000_123, 21.5), new TelemetryPoint("dev1", "humidity", 1_732_550_000_123, 40)],
            points);
    }

    [Fact]
    public void Timestamp_after_the_values_still_applies()
    {
        var points = ParseValid("""{"values": {"a": 1, "b": 2}, "ts": 1732550000}""");
        Assert.All(points, p => Assert.Equal(1_732_550_000_000, p.TimestampMs));
    }

    [Theory]
    [InlineData("1732550000", 1_732_550_000_000)]
    [InlineData("1732550000.123", 1_732_550_000_123)]
    [InlineData("99999999999", 99_999_999_999_000)]
    [InlineData("100000000000", 100_000_000_000)]
    [InlineData("1732550000123", 1_732_550_000_123)]
    [InlineData("0", 0)]
    public void Timestamps_below_1e11_are_seconds_and_others_milliseconds(string raw, long expectedMs)
    {
        var points = new List<TelemetryPoint>();
        // Far-future seconds values are beyond the skew limit for Now, so use a parser with a generous one.
        var lenient = new TelemetryPayloadParser(new TelemetryPayloadParserOptions { MaxFutureSkew = TimeSpan.FromDays(365 * 5000) });
        Assert.True(lenient.TryParse("d", Bytes($$"""{"type":"t","value":1,"timestamp":{{raw}}}"""), Now, points, out var error), error);
        Assert.Equal(expectedMs, points[0].TimestampMs);
    }

    [Fact]
    public void Missing_timestamp_uses_server_time()
    {
        var points = ParseValid("""[{"type":"t","value":1},{"values":{"h":2}},{"type":"x","value":3,"timestamp":null}]""");
        Assert.All(points, p => Assert.Equal(Now, p.TimestampMs));
    }

    [Fact]
    public void Array_of_mixed_forms_keeps_element_order()
    {
        var points = ParseValid("""[{"type":"a","value":1,"timestamp":1732550000},{"ts":1732550001000,"values":{"b":2,"c":3}},{"type":"d","value":-4.5e-3,"unit":"V"}]""");
        Assert.Equal(["a", "b", "c", "d"], points.Select(p => p.Metric));
        Assert.Equal([1.0, 2.0, 3.0, -0.0045], points.Select(p => p.Value));
        Assert.Equal("V", points[3].Unit);
    }

    [Fact]
    public void Repeated_metric_names_share_one_string()
    {
        var first = ParseValid("""{"type":"temperature","value":1}""");
        var second = ParseValid("""{"values":{"temperature":2}}""");
        Assert.Same(first[0].Metric, second[0].Metric);
    }

    [Fact]
    public void Escaped_metric_names_are_unescaped()
    {
        var points = ParseValid("""{"type":"temp\u00e9rature","value":1}""");
        Assert.Equal("température", points[0].Metric);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "malformed JSON")]
    [InlineData("{", "malformed JSON")]
    [InlineData("{\"type\":\"t\",\"value\":1,}", "malformed JSON")]
    [InlineData("{\"type\":\"t\",\"value\":1} x", "malformed JSON")]
    [InlineData("42", "must be a JSON object or an array")]
    [InlineData("[]", "no points")]
    [InlineData("[1]", "element 0: must be an object")]
    [InlineData("{\"type\":\"\\uD800\",\"value\":1}", "malformed JSON")]
    [InlineData("{\"\\uDC00\":1}", "malformed JSON")]
    public void Malformed_payloads_are_rejected(string json, string expectedFragment)
    {
        var error = ParseInvalid(json);
        Assert.Contains(expectedFragment, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"type":"t","value":"21.5"}""", "'value' must be a number")]
    [InlineData("""{"type":"t","value":true}""", "booleans are not supported")]
    [InlineData("""{"type":"t","value":null}""", "'value' must be a number")]
    [InlineData("""{"type":"t","value":{"x":1}}""", "'value' must be a number")]
    [InlineData("""{"type":"t","value":1e400}""", "finite")]
    [InlineData("""{"type":5,"value":1}""", "'type' must be a string")]
    [InlineData("""{"type":"","value":1}""", "must not be empty")]
    [InlineData("""{"type":"a\u0001b","value":1}""", "control characters")]
    [InlineData("""{"value":1}""", "'type' (the metric name) is required")]
    [InlineData("""{"type":"t"}""", "'value' is required")]
    [InlineData("""{"location":"hall"}""", "needs 'type' and 'value', or 'values'")]
    [InlineData("""{"type":"t","value":1,"timestamp":-1}""", "must not be negative")]
    [InlineData("""{"type":"t","value":1,"timestamp":"1732550000"}""", "'timestamp' must be a number")]
    [InlineData("""{"type":"t","value":1,"timestamp":1e400}""", "finite")]
    [InlineData("""{"type":"t","value":1,"timestamp":1800000000}""", "too far in the future")]
    [InlineData("""{"type":"t","value":1,"unit":3}""", "'unit' must be a string")]
    [InlineData("""{"values":[1,2]}""", "'values' must be an object")]
    [InlineData("""{"values":{"h":false}}""", "'values.h' must be a number (booleans")]
    [InlineData("""{"values":{"h":1},"type":"t","value":1}""", "has both")]
    [InlineData("""{"type":"t","value":1,"sensor_id":7}""", "'sensor_id' must be a string")]
    public void Wrong_types_are_rejected_with_a_clear_message(string json, string expectedFragment)
    {
        var error = ParseInvalid(json);
        Assert.Contains(expectedFragment, error, StringComparison.Ordinal);
    }

    [Fact]
    public void One_bad_element_rejects_the_whole_array_and_names_it()
    {
        var error = ParseInvalid("""[{"type":"a","value":1},{"type":"b","value":2},{"type":"c","value":3},{"type":"d","value":"x"}]""");
        Assert.Equal("element 3: 'value' must be a number", error);
    }

    [Fact]
    public void Metric_names_longer_than_128_characters_are_rejected()
    {
        ParseValid($$"""{"type":"{{new string('m', 128)}}","value":1}""");
        Assert.Contains("longer than 128", ParseInvalid($$"""{"type":"{{new string('m', 129)}}","value":1}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Sensor_id_differing_from_the_device_is_rejected()
    {
        ParseValid("""{"sensor_id":"dev1","type":"t","value":1}""");
        Assert.Contains("'sensor_id' does not match", ParseInvalid("""{"sensor_id":"dev2","type":"t","value":1}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void More_points_than_the_limit_are_rejected()
    {
        var limited = new TelemetryPayloadParser(new TelemetryPayloadParserOptions { MaxPointsPerPayload = 3 });
        var output = new List<TelemetryPoint>();
        Assert.True(limited.TryParse("d", Bytes("""{"values":{"a":1,"b":2,"c":3}}"""), Now, output, out _));
        var error = ParseInvalid("""[{"values":{"a":1,"b":2}},{"type":"c","value":3},{"type":"d","value":4}]""", with: limited);
        Assert.Contains("more than 3 points", error, StringComparison.Ordinal);
        error = ParseInvalid("""{"values":{"a":1,"b":2,"c":3,"d":4}}""", with: limited);
        Assert.Contains("more than 3 points", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Deep_nesting_is_rejected()
    {
        var deep = "{\"type\":\"t\",\"value\":1,\"extra\":" + new string('[', 50) + new string(']', 50) + "}";
        Assert.Contains("depth", ParseInvalid(deep), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Unknown_fields_are_ignored()
    {
        var points = ParseValid("""{"type":"t","value":1,"firmware":{"v":[1,2]},"rssi":-70}""");
        Assert.Single(points);
    }

    [Fact]
    public void Non_utf8_bytes_are_rejected()
    {
        var valid = Encoding.UTF8.GetBytes("""{"type":"t","value":1,"location":"XX"}""");
        var index = Array.IndexOf(valid, (byte)'X');
        valid[index] = 0xC3;
        valid[index + 1] = 0x28;
        var output = new List<TelemetryPoint>();
        Assert.False(parser.TryParse("d", new ReadOnlySequence<byte>(valid), Now, output, out var error));
        Assert.Equal("payload is not valid UTF-8", error);
        Assert.False(parser.TryParse("d", Segmented(valid, 1), Now, output, out error));
        Assert.Equal("payload is not valid UTF-8", error);
    }

    [Fact]
    public void Truncating_a_valid_payload_anywhere_is_rejected_without_output()
    {
        var json = Encoding.UTF8.GetBytes("""[{"sensor_id":"dev1","type":"température","value":21.5,"unit":"°C","timestamp":1732550000},{"ts":1732550000123,"values":{"humidity":40}}]""");
        for (var length = 0; length < json.Length; length++)
        {
            var output = new List<TelemetryPoint>();
            var ok = parser.TryParse("dev1", new ReadOnlySequence<byte>(json, 0, length), Now, output, out var error);
            Assert.False(ok, $"a payload truncated to {length} of {json.Length} bytes parsed");
            Assert.NotNull(error);
            Assert.Empty(output);
        }
    }

    [Fact]
    public void Multi_segment_input_parses_like_a_single_segment()
    {
        var json = Encoding.UTF8.GetBytes("""[{"sensor_id":"dev1","type":"température","value":21.5,"unit":"°C","timestamp":1732550000},{"ts":1732550000123,"values":{"humidité":40,"x":1e-300}}]""");
        var expected = new List<TelemetryPoint>();
        Assert.True(parser.TryParse("dev1", new ReadOnlySequence<byte>(json), Now, expected, out _));
        foreach (var segmentSize in new[] { 1, 2, 3, 5, 16 })
        {
            var output = new List<TelemetryPoint>();
            Assert.True(parser.TryParse("dev1", Segmented(json, segmentSize), Now, output, out var error), $"segments of {segmentSize}: {error}");
            Assert.Equal(expected, output);
        }
    }

    [Fact]
    public void Utf8_validation_handles_characters_split_across_segments()
    {
        var bytes = Encoding.UTF8.GetBytes("a°€😀b");
        for (var size = 1; size <= 4; size++)
        {
            Assert.True(TelemetryPayloadParser.IsValidUtf8(Segmented(bytes, size)), $"segment size {size}");
        }

        Assert.False(TelemetryPayloadParser.IsValidUtf8(Segmented([0x61, 0xF0, 0x9F, 0x98], 1)), "a truncated 4-byte character is invalid");
    }

    private static ReadOnlySequence<byte> Segmented(byte[] bytes, int segmentSize)
    {
        Segment? first = null;
        Segment? last = null;
        for (var offset = 0; offset < bytes.Length; offset += segmentSize)
        {
            var memory = bytes.AsMemory(offset, Math.Min(segmentSize, bytes.Length - offset));
            if (last is null)
            {
                first = last = new Segment(memory, 0);
            }
            else
            {
                last = last.Append(memory);
            }
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
