using System.Text.Json.Nodes;
using Fieldline.Core.Shadows;

namespace Fieldline.Core.Tests.Shadows;

public sealed class ShadowDocumentsTests
{
    [Theory]
    [InlineData("""{"a":1}""", """{"a":1}""", """{}""")]
    [InlineData("""{"a":1}""", """{}""", """{"a":1}""")]
    [InlineData("""{"a":1,"b":"x"}""", """{"a":2,"b":"x"}""", """{"a":1}""")]
    [InlineData("""{"c":{"x":1,"y":2}}""", """{"c":{"x":1,"y":3}}""", """{"c":{"y":2}}""")]
    [InlineData("""{"c":{"x":1}}""", """{"c":{"x":1,"extra":5}}""", """{}""")]
    [InlineData("""{"c":{"x":{"deep":true}}}""", """{"c":{"x":{"deep":false}}}""", """{"c":{"x":{"deep":true}}}""")]
    [InlineData("""{"c":{"x":1}}""", """{"c":7}""", """{"c":{"x":1}}""")]
    [InlineData("""{"list":[1,2]}""", """{"list":[1,2]}""", """{}""")]
    [InlineData("""{"list":[1,2]}""", """{"list":[2,1]}""", """{"list":[1,2]}""")]
    [InlineData("""{"n":1}""", """{"n":1.0}""", """{}""")]
    public void The_delta_holds_the_desired_keys_that_differ_from_reported_at_any_depth(string desired, string reported, string delta) =>
        Assert.Equal(delta, ShadowDocuments.ComputeDelta(Parse(desired), Parse(reported)).ToJsonString());

    [Fact]
    public void Merging_removes_nulls_merges_objects_replaces_the_rest_and_timestamps_what_it_wrote()
    {
        var section = Parse("""{"keep":1,"gone":2,"obj":{"a":1,"b":2},"scalar":3}""");
        var metadata = Parse("""{"keep":{"timestamp":100},"gone":{"timestamp":100},"obj":{"a":{"timestamp":100},"b":{"timestamp":100}},"scalar":{"timestamp":100}}""");

        var changed = ShadowDocuments.Merge(section, metadata, Parse("""{"gone":null,"obj":{"b":null,"c":3},"scalar":{"now":"object","skip":null}}"""), 200);

        Assert.True(changed);
        Assert.Equal("""{"keep":1,"obj":{"a":1,"c":3},"scalar":{"now":"object"}}""", section.ToJsonString());
        Assert.Equal(
            """{"keep":{"timestamp":100},"obj":{"a":{"timestamp":100},"c":{"timestamp":200}},"scalar":{"now":{"timestamp":200}}}""",
            metadata.ToJsonString());
    }

    [Fact]
    public void Merging_the_same_values_again_changes_nothing()
    {
        var section = Parse("""{"a":1,"o":{"b":true}}""");
        var metadata = new JsonObject();

        Assert.False(ShadowDocuments.Merge(section, metadata, Parse("""{"a":1,"o":{"b":true},"absent":null}"""), 5));
    }

    [Theory]
    [InlineData("""{}""", 1, 0)]
    [InlineData("""{"a":1}""", 1, 1)]
    [InlineData("""{"a":{"b":[1,{"c":2}]}}""", 4, 3)]
    public void Depth_and_key_count_include_objects_inside_arrays(string json, int depth, int keys)
    {
        var node = Parse(json);
        Assert.Equal(depth, ShadowDocuments.Depth(node));
        Assert.Equal(keys, ShadowDocuments.KeyCount(node));
    }

    private static JsonObject Parse(string json) => JsonNode.Parse(json)!.AsObject();
}
