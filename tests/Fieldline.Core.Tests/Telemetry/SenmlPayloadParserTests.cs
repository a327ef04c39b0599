using System.Formats.Cbor;
using System.Text;
using Fieldline.Core.Telemetry;

namespace Fieldline.Core.Tests.Telemetry;

/// <summary>SenML (RFC 8428) in JSON and CBOR: the RFC's examples, base fields, and every way a pack is refused.</summary>
public sealed class SenmlPayloadParserTests
{
    private const long Now = 1_732_550_100_000;
    private readonly SenmlPayloadParser _parser = new();

    [Fact]
    public void The_rfcs_single_datapoint_is_one_point_at_server_time()
    {
        var points = Json("""[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]""");

        Assert.Equal([new TelemetryPoint("dev1", "urn:dev:ow:10e2073a01080063", Now, 23.1, "Cel")], points);
    }

    [Fact]
    public void The_rfcs_multiple_measurements_resolve_base_name_base_time_relative_times_and_base_unit()
    {
        // RFC 8428 §5.1.3, abridged: absolute base time, relative t, a unit from bu unless the record has its own.
        var points = Json("""
            [{"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
             {"n":"current","t":-5,"v":1.2},
             {"n":"current","t":-4,"v":1.3}]
            """);

        Assert.Equal(
            [
                new TelemetryPoint("dev1", "urn:dev:ow:10e2073a0108006:voltage", 1_276_020_076_001, 120.1, "V"),
                new TelemetryPoint("dev1", "urn:dev:ow:10e2073a0108006:current", 1_276_020_071_001, 1.2, "A"),
                new TelemetryPoint("dev1", "urn:dev:ow:10e2073a0108006:current", 1_276_020_072_001, 1.3, "A"),
            ],
            points);
    }

    [Fact]
    public void Small_times_are_relative_to_now_booleans_are_1_or_0_sums_and_base_values_add_and_base_only_records_set_the_base()
    {
        var points = Json("""
            [{"bn":"pump/","bv":100},
             {"n":"level","v":2.5,"t":-10},
             {"n":"running","vb":true},
             {"n":"flow","s":7,"bs":3},
             {"n":"label","vs":"text","v":1}]
            """);

        Assert.Equal(
            [
                new TelemetryPoint("dev1", "pump/level", Now - 10_000, 102.5),
                new TelemetryPoint("dev1", "pump/running", Now, 1),
                new TelemetryPoint("dev1", "pump/flow", Now, 10),
                new TelemetryPoint("dev1", "pump/label", Now, 101),
            ],
            points);
    }

    [Fact]
    public void The_rfcs_cbor_pack_reads_as_its_json_form()
    {
        // RFC 8428 §5.1.2's pack in CBOR with §6's labels: bn -2, n 0, u 1, v 2, written out by hand.
        var cbor = Convert.FromHexString(
            "82" + "a4" + "21" + "781c" + Hex("urn:dev:ow:10e2073a01080063:") + "00" + "67" + Hex("voltage") + "01" + "61" + Hex("V") + "02" + "fb405e066666666666"
            + "a3" + "00" + "67" + Hex("current") + "01" + "61" + Hex("A") + "02" + "fb3ff3333333333333");
        var json = """[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},{"n":"current","u":"A","v":1.2}]""";

        Assert.Equal(Json(json), Cbor(cbor));
        Assert.Equal("urn:dev:ow:10e2073a01080063:current", Cbor(cbor)[1].Metric);
    }

    [Fact]
    public void Cbor_integers_half_floats_booleans_and_text_labels_of_extensions_are_read()
    {
        var writer = new CborWriter();
        writer.WriteStartArray(null); // indefinite length
        writer.WriteStartMap(4);
        writer.WriteInt32(-2);
        writer.WriteTextString("d/");
        writer.WriteInt32(0);
        writer.WriteTextString("count");
        writer.WriteInt32(2);
        writer.WriteInt32(-7);
        writer.WriteTextString("extension");
        writer.WriteTextString("ignored");
        writer.WriteEndMap();
        writer.WriteStartMap(2);
        writer.WriteInt32(0);
        writer.WriteTextString("half");
        writer.WriteInt32(2);
        writer.WriteHalf((Half)1.5);
        writer.WriteEndMap();
        writer.WriteStartMap(2);
        writer.WriteInt32(0);
        writer.WriteTextString("on");
        writer.WriteInt32(4);
        writer.WriteBoolean(false);
        writer.WriteEndMap();
        writer.WriteEndArray();

        Assert.Equal(
            [new TelemetryPoint("dev1", "d/count", Now, -7), new TelemetryPoint("dev1", "d/half", Now, 1.5), new TelemetryPoint("dev1", "d/on", Now, 0)],
            Cbor(writer.Encode()));
    }

    [Theory]
    [InlineData("", "payload is empty")]
    [InlineData("""{"n":"a","v":1}""", "JSON array of records")]
    [InlineData("""[1]""", "record 0: must be an object")]
    [InlineData("""[{"n":"a","v":1}""", "not valid JSON")]
    [InlineData("""[{"n":"a","v":1}] x""", "not valid JSON")]
    [InlineData("""[{"n":"a","v":"1"}]""", "record 0: 'v' must be a finite number")]
    [InlineData("""[{"n":1,"v":1}]""", "record 0: 'n' must be a string")]
    [InlineData("""[{"n":"a","vb":1}]""", "record 0: 'vb' must be true or false")]
    [InlineData("""[{"n":"a"}]""", "record 0: has no value")]
    [InlineData("""[{"v":1}]""", "record 0: has no name")]
    [InlineData("""[{"n":"a","vs":"on"}]""", "record 0: 'vs' values are not stored")]
    [InlineData("""[{"n":"a","vd":"AQ"}]""", "record 0: 'vd' values are not stored")]
    [InlineData("""[{"n":"-a","v":1}]""", "RFC 8428 §4.5.1")]
    [InlineData("""[{"n":"a b","v":1}]""", "RFC 8428 §4.5.1")]
    [InlineData("""[{"n":"a","v":1,"ttl_":5}]""", "record 0: field 'ttl_' must be understood")]
    [InlineData("""[{"bver":11,"n":"a","v":1}]""", "record 0: SenML version 11 is newer")]
    [InlineData("""[{"n":"a","v":1,"t":4102444800}]""", "record 0: the time is too far in the future")]
    [InlineData("""[{"n":"a","v":1,"u":"0123456789012345678901234567890123"}]""", "record 0: the unit is longer than 32")]
    [InlineData("""[{"n":"a","v":1},{"n":"b","v":[1]}]""", "record 1: 'v' must be a finite number")]
    [InlineData("""[{"n":"a","v":1,"x":[[[1]]]}]""", "not valid JSON")] // deeper than a pack can be
    public void A_bad_json_pack_is_refused_whole_with_the_record_and_field_named(string json, string expected) =>
        Assert.Contains(expected, Invalid(Encoding.UTF8.GetBytes(json), TelemetryPayloadFormat.SenmlJson), StringComparison.Ordinal);

    [Fact]
    public void A_name_longer_than_128_characters_is_refused() =>
        Assert.Contains("longer than 128", Invalid(Encoding.UTF8.GetBytes($$"""[{"n":"{{new string('a', 129)}}","v":1}]"""), TelemetryPayloadFormat.SenmlJson), StringComparison.Ordinal);

    [Theory]
    [InlineData("a1", "CBOR array of records")] // a map, not an array
    [InlineData("8101", "record 0: must be a map")]
    [InlineData("81a200616102", "not valid SenML CBOR")] // truncated inside the value of v
    [InlineData("81a1f602", "a field label must be an integer or a text string")]
    [InlineData("81a200616102fb7ff0000000000000", "'v' must be a finite number")] // v = +Infinity
    [InlineData("81a2006161026161", "'v' must be a finite number")] // v = "a"
    [InlineData("81a20061610201ff", "unexpected content")]
    [InlineData("81a200616103616f", "record 0: 'vs' values are not stored")]
    public void A_bad_cbor_pack_is_refused_whole(string hex, string expected) =>
        Assert.Contains(expected, Invalid(Convert.FromHexString(hex), TelemetryPayloadFormat.SenmlCbor), StringComparison.Ordinal);

    [Fact]
    public void Thousands_of_mutated_packs_never_throw_and_never_half_parse()
    {
        var random = new Random(8428);
        var seeds = new[]
        {
            Encoding.UTF8.GetBytes("""[{"bn":"d/","bt":1732550000,"n":"t","u":"Cel","v":21.5},{"n":"h","t":1,"v":40,"vb":true,"s":2}]"""),
            Convert.FromHexString("82a4217819" + Hex("urn:dev:ow:10e2073a010800") + "0067" + Hex("voltage") + "016156" + "02fb405e066666666666" + "a3" + "0067" + Hex("current") + "016141" + "02fb3ff3333333333333"),
        };
        for (var i = 0; i < 20_000; i++)
        {
            var seed = seeds[i % 2];
            var mutated = seed.ToArray();
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            }

            var cut = mutated.AsSpan(0, random.Next(1, mutated.Length + 1)).ToArray();
            var output = new List<TelemetryPoint> { new("other", "kept", 1, 1) };
            var ok = _parser.TryParse("dev1", cut, i % 2 == 0 ? TelemetryPayloadFormat.SenmlJson : TelemetryPayloadFormat.SenmlCbor, Now, output, out var error);
            Assert.True(ok ? error is null && output.Count > 1 : error is not null && output.Count == 1, $"pack {Convert.ToHexString(cut)}: ok {ok}, error {error}, {output.Count} points");
        }
    }

    private List<TelemetryPoint> Json(string json) => Valid(Encoding.UTF8.GetBytes(json), TelemetryPayloadFormat.SenmlJson);

    private List<TelemetryPoint> Cbor(byte[] cbor) => Valid(cbor, TelemetryPayloadFormat.SenmlCbor);

    private List<TelemetryPoint> Valid(byte[] payload, TelemetryPayloadFormat format)
    {
        var output = new List<TelemetryPoint>();
        Assert.True(_parser.TryParse("dev1", payload, format, Now, output, out var error), $"expected the pack to parse, got: {error}");
        return output;
    }

    private string Invalid(byte[] payload, TelemetryPayloadFormat format)
    {
        var output = new List<TelemetryPoint> { new("other", "kept", 1, 1) };
        Assert.False(_parser.TryParse("dev1", payload, format, Now, output, out var error), $"expected the pack to be refused, got {output.Count - 1} points");
        Assert.Single(output);
        return error!;
    }

    private static string Hex(string text) => Convert.ToHexString(Encoding.UTF8.GetBytes(text));
}
