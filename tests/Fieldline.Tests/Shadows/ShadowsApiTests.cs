using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Shadows;

public sealed class ShadowsApiTests
{
    [Fact]
    public async Task A_new_device_has_an_empty_shadow_at_version_0_and_an_unknown_one_is_404()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-1");

        using var response = await env.Client.GetAsync("/api/v1/devices/s-1/shadow");
        using var missing = await env.Client.GetAsync("/api/v1/devices/nobody/shadow");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("\"0\"", response.Headers.ETag?.ToString());
        var shadow = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(0, (long)shadow["version"]!);
        Assert.Equal("{}", shadow["state"]!["desired"]!.ToJsonString());
        Assert.Equal("{}", shadow["state"]!["reported"]!.ToJsonString());
        Assert.Equal("{}", shadow["state"]!["delta"]!.ToJsonString());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Desired_state_merges_keys_removes_nulls_and_the_delta_compares_nested_objects()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-2");

        var first = await PatchAsync(env, "s-2", """{"state":{"desired":{"led":"on","config":{"interval":10,"mode":"eco"},"obsolete":1}}}""");
        await PatchAsync(env, "s-2", """{"state":{"reported":{"led":"on","config":{"interval":5,"mode":"eco"}}}}""", adminOverride: true);
        var third = await PatchAsync(env, "s-2", """{"state":{"desired":{"obsolete":null,"config":{"mode":null,"target":21.5}}}}""");

        Assert.Equal(1, (long)first["version"]!);
        Assert.Equal(3, (long)third["version"]!);
        Assert.Equal("""{"led":"on","config":{"interval":10,"target":21.5}}""", third["state"]!["desired"]!.ToJsonString());

        // Only what differs, down to the nested keys: led matches; config.interval differs; config.target is new.
        Assert.Equal("""{"config":{"interval":10,"target":21.5}}""", third["state"]!["delta"]!.ToJsonString());
        Assert.NotNull(third["metadata"]!["desired"]!["config"]!["target"]!["timestamp"]);
        Assert.Null(third["metadata"]!["desired"]!["obsolete"]);
        Assert.Null(third["metadata"]!["desired"]!["config"]!["mode"]);
    }

    [Fact]
    public async Task A_stale_version_gets_409_by_if_match_or_by_the_version_field_and_changes_nothing()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-3");
        await PatchAsync(env, "s-3", """{"state":{"desired":{"a":1}}}""");

        using var byHeader = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/devices/s-3/shadow")
        {
            Content = new StringContent("""{"state":{"desired":{"a":2}}}""", Encoding.UTF8, "application/json"),
        };
        byHeader.Headers.TryAddWithoutValidation("If-Match", "\"0\"");
        using var headerResponse = await env.Client.SendAsync(byHeader);
        using var fieldResponse = await env.Client.PatchAsync("/api/v1/devices/s-3/shadow", Json("""{"state":{"desired":{"a":3}},"version":0}"""));
        var current = await PatchAsync(env, "s-3", """{"state":{"desired":{"b":true}},"version":1}""");

        Assert.Equal(HttpStatusCode.Conflict, headerResponse.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, fieldResponse.StatusCode);
        var problem = (await fieldResponse.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(1, (long)problem["current_version"]!);
        Assert.Equal("""{"a":1,"b":true}""", current["state"]!["desired"]!.ToJsonString());
        Assert.Equal(2, (long)current["version"]!);
    }

    [Fact]
    public async Task An_operator_cannot_write_reported_state_without_the_admin_override()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-4");

        using var refused = await env.Client.PatchAsync("/api/v1/devices/s-4/shadow", Json("""{"state":{"reported":{"temp":20}}}"""));
        var overridden = await PatchAsync(env, "s-4", """{"state":{"reported":{"temp":20}}}""", adminOverride: true);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(1, (long)overridden["version"]!);
        Assert.Equal(20, (int)overridden["state"]!["reported"]!["temp"]!);
    }

    [Theory]
    [InlineData("{\"state\":{\"desired\":{\"a\":", "body")]
    [InlineData("[1,2]", "body")]
    [InlineData("{\"desired\":{\"a\":1}}", "state")]
    [InlineData("{\"state\":{\"desired\":5}}", "state.desired")]
    [InlineData("{\"state\":{\"wanted\":{}}}", "state.wanted")]
    [InlineData("{\"state\":{\"desired\":{}},\"version\":\"x\"}", "version")]
    public async Task A_malformed_update_gets_400_naming_the_field(string body, string field)
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-5");

        using var response = await env.Client.PatchAsync("/api/v1/devices/s-5/shadow", Json(body));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(problem["errors"]?[field] is not null, $"expected an error for '{field}', saw {problem.ToJsonString()}");
    }

    [Fact]
    public async Task An_update_past_the_size_or_depth_limit_is_refused_whole()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("s-6");
        await PatchAsync(env, "s-6", """{"state":{"desired":{"keep":1}}}""");

        var big = new string('x', 9000);
        using var tooLarge = await env.Client.PatchAsync("/api/v1/devices/s-6/shadow", Json("{\"state\":{\"desired\":{\"other\":2,\"blob\":\"" + big + "\"}}}"));
        using var tooDeep = await env.Client.PatchAsync("/api/v1/devices/s-6/shadow", Json("""{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"""));
        var after = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/s-6/shadow"))!;

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, tooDeep.StatusCode);
        Assert.Equal(1, (long)after["version"]!);
        Assert.Equal("""{"keep":1}""", after["state"]!["desired"]!.ToJsonString());
    }

    [Fact]
    public async Task The_shadow_survives_a_restart_delete_resets_it_and_deleting_the_device_removes_it()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            await using (var first = await TestEnvironment.StartAsync(dataDir: dataDir))
            {
                await first.RegisterAsync("s-7");
                await first.RegisterAsync("s-8");
                await PatchAsync(first, "s-7", """{"state":{"desired":{"mode":"auto"}}}""");
                await PatchAsync(first, "s-8", """{"state":{"desired":{"mode":"manual"}}}""");
            }

            await using var second = await TestEnvironment.StartAsync(dataDir: dataDir);
            var restored = (await second.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/s-7/shadow"))!;
            Assert.Equal(1, (long)restored["version"]!);
            Assert.Equal("auto", (string?)restored["state"]!["desired"]!["mode"]);

            using var deleted = await second.Client.DeleteAsync("/api/v1/devices/s-7/shadow");
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
            var reset = (await second.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/s-7/shadow"))!;
            Assert.Equal(0, (long)reset["version"]!);

            using var deviceDeleted = await second.Client.DeleteAsync("/api/v1/devices/s-8");
            Assert.Equal(HttpStatusCode.NoContent, deviceDeleted.StatusCode);
            await second.RegisterAsync("s-8");
            var fresh = (await second.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/s-8/shadow"))!;
            Assert.Equal(0, (long)fresh["version"]!);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<JsonObject> PatchAsync(TestEnvironment env, string deviceId, string body, bool adminOverride = false)
    {
        using var response = await env.Client.PatchAsync($"/api/v1/devices/{deviceId}/shadow{(adminOverride ? "?admin_override=true" : "")}", Json(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"expected 200 for {body}, saw {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }
}
