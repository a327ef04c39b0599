using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests;

/// <summary>The certificate_fingerprint of a device through the devices API.</summary>
public sealed class DeviceCertificateApiTests
{
    private const string Fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    [Fact]
    public async Task A_fingerprint_in_OpenSSL_form_is_stored_as_lowercase_hex_and_shown()
    {
        await using var env = await TestEnvironment.StartAsync();
        var openSslForm = string.Join(':', Fingerprint.ToUpperInvariant().Chunk(2).Select(pair => new string(pair)));

        using var response = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "c-1", name = "n", type = "sensor", certificate_fingerprint = openSslForm });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Fingerprint, (await response.Content.ReadFromJsonAsync<JsonObject>())!["certificate_fingerprint"]!.GetValue<string>());
        var read = await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/c-1");
        Assert.Equal(Fingerprint, read!["certificate_fingerprint"]!.GetValue<string>());
        var withoutCertificate = await env.RegisterAsync("c-2");
        Assert.Null(withoutCertificate["certificate_fingerprint"]);
    }

    [Theory]
    [InlineData("9f86d0")]
    [InlineData("zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    [InlineData("9f:86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    [InlineData("")]
    public async Task A_malformed_fingerprint_is_a_validation_problem_naming_the_field(string fingerprint)
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "c-1", name = "n", type = "sensor", certificate_fingerprint = fingerprint });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.NotNull(problem["errors"]!["certificate_fingerprint"]);
    }

    [Fact]
    public async Task A_fingerprint_registered_to_one_device_cannot_be_given_to_another()
    {
        await using var env = await TestEnvironment.StartAsync();
        using (var first = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "c-1", name = "n", type = "sensor", certificate_fingerprint = Fingerprint }))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        await env.RegisterAsync("c-2");

        using var create = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "c-3", name = "n", type = "sensor", certificate_fingerprint = Fingerprint });
        using var patch = await env.Client.PatchAsJsonAsync("/api/v1/devices/c-2", new { certificate_fingerprint = Fingerprint });

        Assert.Equal(HttpStatusCode.Conflict, create.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, patch.StatusCode);
        Assert.Equal("Certificate already registered", (await patch.Content.ReadFromJsonAsync<JsonObject>())!["title"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await env.Client.GetAsync("/api/v1/devices/c-3")).StatusCode);
    }

    [Fact]
    public async Task Patch_sets_keeps_and_clears_the_fingerprint_and_put_without_it_clears_it()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("c-1");

        var set = await PatchAsync(env, new { certificate_fingerprint = Fingerprint });
        var kept = await PatchAsync(env, new { location = "Hall B" });
        var cleared = await PatchAsync(env, new { certificate_fingerprint = "" });
        await PatchAsync(env, new { certificate_fingerprint = Fingerprint });
        using var put = await env.Client.PutAsJsonAsync("/api/v1/devices/c-1", new { name = "n", type = "sensor" });
        var replaced = await put.Content.ReadFromJsonAsync<JsonObject>();

        Assert.Equal(Fingerprint, set["certificate_fingerprint"]!.GetValue<string>());
        Assert.Equal(Fingerprint, kept["certificate_fingerprint"]!.GetValue<string>());
        Assert.Null(cleared["certificate_fingerprint"]);
        Assert.Null(replaced!["certificate_fingerprint"]);
    }

    private static async Task<JsonObject> PatchAsync(TestEnvironment env, object body)
    {
        using var response = await env.Client.PatchAsJsonAsync("/api/v1/devices/c-1", body);
        Assert.True(response.IsSuccessStatusCode, $"PATCH {System.Text.Json.JsonSerializer.Serialize(body)}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }
}
