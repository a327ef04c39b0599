using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests;

/// <summary>/api/v1/service-accounts over real HTTP against the whole host.</summary>
public sealed class ServiceAccountsApiTests
{
    [Fact]
    public async Task A_created_account_shows_its_generated_password_once()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsJsonAsync("/api/v1/service-accounts", new
        {
            username = "grafana",
            description = "Dashboards",
            rules = new[] { new { action = "subscribe", pattern = "sensor/+/telemetry" }, new { action = "all", pattern = "clients/{clientid}/#" } },
        });
        var created = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var read = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/service-accounts/grafana"))!;

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("/api/v1/service-accounts/grafana", response.Headers.Location?.ToString());
        Assert.Matches("^[A-Za-z0-9_-]{43}$", created["password"]!.GetValue<string>());
        Assert.Null(read["password"]);
        Assert.Equal("Dashboards", read["description"]!.GetValue<string>());
        Assert.Equal([("subscribe", "sensor/+/telemetry"), ("all", "clients/{clientid}/#")], Rules(read));
        Assert.Equal(created["created_at"]!.GetValue<string>(), read["created_at"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_password_chosen_by_the_caller_is_not_echoed()
    {
        await using var env = await TestEnvironment.StartAsync();

        var created = await env.CreateServiceAccountAsync("node-red", [("publish", "flows/#")], password: "a chosen password of some length");

        Assert.Null(created["password"]);
        Assert.DoesNotContain("a chosen password", created.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_fields_are_reported_each_against_its_name()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsJsonAsync("/api/v1/service-accounts", new
        {
            username = "$admin",
            password = "too short",
            rules = new object[]
            {
                new { action = "read", pattern = "a/#" },
                new { action = "publish", pattern = "a/#/b" },
                new { action = "subscribe", pattern = "a/{user}/#" },
                new { action = "subscribe" },
            },
        });
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var errors = problem["errors"]!.AsObject();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(
            ["password", "rules[0].action", "rules[1].pattern", "rules[2].pattern", "rules[3].pattern", "username"],
            errors.Select(e => e.Key).Order(StringComparer.Ordinal).ToArray());
        Assert.Contains("16 to 256", errors["password"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("publish, subscribe, all", errors["rules[0].action"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("{user}", errors["rules[2].pattern"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain("too short", problem.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_name_and_a_device_id_can_never_be_the_same()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("thermo-1");
        await env.CreateServiceAccountAsync("exporter", []);

        using var accountAsDevice = await env.Client.PostAsJsonAsync("/api/v1/service-accounts", new { username = "thermo-1" });
        using var deviceAsAccount = await env.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "exporter", name = "x", type = "sensor" });
        using var twice = await env.Client.PostAsJsonAsync("/api/v1/service-accounts", new { username = "exporter" });

        Assert.Equal(HttpStatusCode.Conflict, accountAsDevice.StatusCode);
        Assert.Contains("is the id of a device", (await accountAsDevice.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, deviceAsAccount.StatusCode);
        Assert.Contains("user name of a service account", (await deviceAsAccount.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);
        Assert.Equal("Service account already exists", (await twice.Content.ReadFromJsonAsync<JsonObject>())!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Accounts_are_listed_in_pages_ordered_by_user_name()
    {
        await using var env = await TestEnvironment.StartAsync();
        foreach (var name in new[] { "c-svc", "a-svc", "b-svc" })
        {
            await env.CreateServiceAccountAsync(name, [], password: "password-of-" + name + "-long");
        }

        var first = (await env.Client.GetFromJsonAsync<JsonObject>("/api/v1/service-accounts?limit=2"))!;
        var second = (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/service-accounts?limit=2&cursor={first["next_cursor"]}"))!;
        using var badLimit = await env.Client.GetAsync("/api/v1/service-accounts?limit=0");

        Assert.Equal(["a-svc", "b-svc"], first["items"]!.AsArray().Select(i => i!["username"]!.GetValue<string>()));
        Assert.Equal(["c-svc"], second["items"]!.AsArray().Select(i => i!["username"]!.GetValue<string>()));
        Assert.Null(second["next_cursor"]);
        Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
    }

    [Fact]
    public async Task Put_replaces_the_rules_and_patch_changes_only_what_it_sends()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.CreateServiceAccountAsync("svc", [("publish", "a/#")]);

        using var patch = await env.Client.PatchAsJsonAsync("/api/v1/service-accounts/svc", new { description = "Only the description" });
        var patched = (await patch.Content.ReadFromJsonAsync<JsonObject>())!;
        using var put = await env.Client.PutAsJsonAsync("/api/v1/service-accounts/svc", new { rules = new[] { new { action = "subscribe", pattern = "b/+" } } });
        var replaced = (await put.Content.ReadFromJsonAsync<JsonObject>())!;
        using var missing = await env.Client.PutAsJsonAsync("/api/v1/service-accounts/nobody", new { rules = Array.Empty<object>() });
        using var invalid = await env.Client.PatchAsJsonAsync("/api/v1/service-accounts/svc", new { rules = new[] { new { action = "all", pattern = "#/x" } } });

        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        Assert.Equal([("publish", "a/#")], Rules(patched));
        Assert.Equal("Only the description", patched["description"]!.GetValue<string>());
        Assert.Equal([("subscribe", "b/+")], Rules(replaced));
        Assert.Null(replaced["description"]);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
    }

    [Fact]
    public async Task A_new_password_is_generated_and_shown_or_chosen_and_not_shown()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.CreateServiceAccountAsync("svc", []);

        using var generated = await env.Client.PostAsync("/api/v1/service-accounts/svc/password", null);
        var body = (await generated.Content.ReadFromJsonAsync<JsonObject>())!;
        using var chosen = await env.Client.PostAsJsonAsync("/api/v1/service-accounts/svc/password", new { password = "another chosen password" });
        using var tooShort = await env.Client.PostAsJsonAsync("/api/v1/service-accounts/svc/password", new { password = "short" });
        using var unknown = await env.Client.PostAsync("/api/v1/service-accounts/nobody/password", null);

        Assert.Equal(HttpStatusCode.OK, generated.StatusCode);
        Assert.Equal("svc", body["username"]!.GetValue<string>());
        Assert.Matches("^[A-Za-z0-9_-]{43}$", body["password"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NoContent, chosen.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, tooShort.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task A_deleted_account_is_gone_and_its_name_free_for_a_device()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.CreateServiceAccountAsync("temp", []);

        using var delete = await env.Client.DeleteAsync("/api/v1/service-accounts/temp");
        using var again = await env.Client.DeleteAsync("/api/v1/service-accounts/temp");
        using var get = await env.Client.GetAsync("/api/v1/service-accounts/temp");
        await env.RegisterAsync("temp");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        Assert.Equal("Service account not found", (await get.Content.ReadFromJsonAsync<JsonObject>())!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_routes_need_the_admin_key_and_are_in_the_openapi_document()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = env.CreateClient();

        using var list = await anonymous.GetAsync("/api/v1/service-accounts");
        using var create = await anonymous.PostAsJsonAsync("/api/v1/service-accounts", new { username = "sneaky" });
        var document = (await anonymous.GetFromJsonAsync<JsonObject>("/openapi/v1.json"))!;

        Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, create.StatusCode);
        Assert.NotNull(document["paths"]!["/api/v1/service-accounts"]!["post"]!["security"]);
        Assert.NotNull(document["paths"]!["/api/v1/service-accounts/{username}"]!["put"]);
        Assert.NotNull(document["paths"]!["/api/v1/service-accounts/{username}/password"]!["post"]);
        Assert.Equal(HttpStatusCode.NotFound, (await env.Client.GetAsync("/api/v1/service-accounts/sneaky")).StatusCode);
    }

    private static (string Action, string Pattern)[] Rules(JsonObject account) =>
        [.. account["rules"]!.AsArray().Select(r => (r!["action"]!.GetValue<string>(), r["pattern"]!.GetValue<string>()))];
}
