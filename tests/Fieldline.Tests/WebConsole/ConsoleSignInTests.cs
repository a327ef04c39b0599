using Fieldline.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Fieldline.Tests.WebConsole;

/// <summary>The web console in real headless Chromium: sign-in with the admin key, the overview and the devices page.</summary>
[Collection(ConsoleBrowser.Collection)]
public sealed class ConsoleSignInTests
{
    [Fact]
    public async Task A_wrong_key_is_refused_and_the_admin_key_signs_in_to_the_overview_and_the_devices()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("console-th-1");
        await env.RegisterAsync("console-gw-1", "gateway");
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();

        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices").ToString());
        var redirected = page.Url;
        await page.GetByLabel("Admin API key").FillAsync("not-the-key-0123456789");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        var refusal = await page.GetByRole(AriaRole.Alert).InnerTextAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "sign-in");
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.Locator("tr[data-device=console-gw-1]").WaitForAsync(); // back on the page first asked for
        var landed = page.Url;
        var rows = await page.Locator("tbody tr").CountAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Overview" }).ClickAsync();
        var offline = await page.Locator("[data-status=offline]").InnerTextAsync();
        var gateways = await page.Locator("[data-type=gateway]").InnerTextAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "overview");
        await page.GetByRole(AriaRole.Link, new() { Name = "Devices" }).ClickAsync();
        await page.GetByLabel("Type").SelectOptionAsync("gateway");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        await ConsoleBrowser.WaitForPageAsync(page, url => url.Contains("type=gateway", StringComparison.Ordinal));
        var filtered = await page.Locator("tbody tr").AllInnerTextsAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "devices");
        await page.GetByLabel("Type").SelectOptionAsync("");
        await page.GetByLabel("Search id or name").FillAsync("console-t");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        await ConsoleBrowser.WaitForPageAsync(page, url => url.Contains("q=console-t", StringComparison.Ordinal));
        var searched = await page.Locator("tbody tr").AllInnerTextsAsync();

        Assert.Contains("/sign-in", redirected, StringComparison.Ordinal);
        Assert.EndsWith("/devices", landed, StringComparison.Ordinal);
        Assert.Equal("That is not the admin API key.", refusal);
        Assert.Equal("2", offline);
        Assert.Equal("1", gateways);
        Assert.Equal(2, rows);
        Assert.Single(filtered);
        Assert.Contains("console-gw-1", filtered[0], StringComparison.Ordinal);
        Assert.Contains("console-th-1", Assert.Single(searched), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signing_out_ends_the_session_and_the_pages_ask_for_the_key_again()
    {
        await using var env = await TestEnvironment.StartAsync();
        await using var browser = await ConsoleBrowser.LaunchAsync(width: 390, height: 844); // a phone's width
        var page = await browser.NewPageAsync();

        await page.GotoAsync(env.Application.HttpUrl.ToString());
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Overview" }).WaitForAsync();
        var cookies = await browser.Context.CookiesAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" }).WaitForAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices").ToString());

        var session = Assert.Single(cookies, c => c.Name == "fieldline-console");
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);
        Assert.DoesNotContain(TestEnvironment.AdminKey, session.Value, StringComparison.Ordinal);
        Assert.Contains("/sign-in", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_session_survives_a_restart_but_not_a_change_of_the_admin_key()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        await using var browser = await ConsoleBrowser.LaunchAsync();
        await using (var first = await TestEnvironment.StartAsync(dataDir: dataDir))
        {
            await browser.OpenSignedInAsync(first, "/devices");
        }

        string restarted;
        await using (var same = await TestEnvironment.StartAsync(dataDir: dataDir))
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(new Uri(same.Application.HttpUrl, "/devices").ToString());
            restarted = page.Url;
        }

        IPage again;
        IReadOnlyList<BrowserContextCookiesResult> cookies;
        await using (var changed = await TestEnvironment.StartAsync(adminKey: "a-new-admin-key-0123456789", dataDir: dataDir))
        {
            again = await browser.NewPageAsync();
            await again.GotoAsync(new Uri(changed.Application.HttpUrl, "/devices").ToString());
            cookies = await browser.Context.CookiesAsync();
        }

        Directory.Delete(dataDir, recursive: true);

        Assert.EndsWith("/devices", restarted, StringComparison.Ordinal);
        Assert.Contains("/sign-in", again.Url, StringComparison.Ordinal);
        Assert.DoesNotContain(cookies, c => c.Name == "fieldline-console"); // the old session's cookie was removed
    }

    [Fact]
    public async Task The_device_page_shows_properties_latest_values_the_shadow_delta_and_commands()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("console-lamp-1", "actuator");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await env.Telemetry.AppendAsync(new[] { new Fieldline.Core.Telemetry.TelemetryPoint("console-lamp-1", "temperature", now, 21.5, "°C") }, default);
        using (var patch = await env.Client.PatchAsync("/api/v1/devices/console-lamp-1/shadow", new StringContent("""{"state":{"desired":{"led":"on"}}}""", System.Text.Encoding.UTF8, "application/json")))
        {
            patch.EnsureSuccessStatusCode();
        }

        using (var command = await env.Client.PostAsync("/api/v1/devices/console-lamp-1/commands", new StringContent("""{"type":"blink"}""", System.Text.Encoding.UTF8, "application/json")))
        {
            command.EnsureSuccessStatusCode();
        }

        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/sign-in").ToString());
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Overview" }).WaitForAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Devices" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "console-lamp-1" }).ClickAsync();
        var temperature = await page.Locator("tr[data-metric=temperature] td.value").InnerTextAsync();
        var delta = await page.Locator("pre[data-section=delta]").InnerTextAsync();
        var state = await page.Locator("tbody tr[data-command] td.state").InnerTextAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "device");
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices/nobody").ToString());
        var missing = await page.GetByRole(AriaRole.Alert).InnerTextAsync();

        Assert.Equal("21.5", temperature);
        Assert.Contains("\"led\": \"on\"", delta, StringComparison.Ordinal);
        Assert.Equal("pending", state);
        Assert.Contains("No device has the id 'nobody'", missing, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_device_created_in_the_console_shows_its_token_once_and_its_mosquitto_pub_command_works()
    {
        await using var env = await TestEnvironment.StartAsync();
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices/new").ToString());
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        await page.GetByLabel("Device id").FillAsync("bad id!");
        await page.GetByRole(AriaRole.Button, new() { Name = "Register" }).ClickAsync();
        var invalid = await page.GetByRole(AriaRole.Alert).First.InnerTextAsync();
        await page.GetByLabel("Device id").FillAsync("console-new-1");
        await page.GetByLabel("Name").FillAsync("Hall sensor");
        await page.GetByLabel("Location").FillAsync("hall");
        await page.GetByRole(AriaRole.Button, new() { Name = "Register" }).ClickAsync();
        var token = await page.GetByLabel("Token").InputValueAsync();
        var command = await page.GetByLabel("Send a reading with mosquitto_pub").InputValueAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "new-device");

        // The command as shown, run by a shell: the reading arrives.
        var published = await ExternalProcess.RunAsync("bash", ["-c", command]);
        await page.GetByRole(AriaRole.Link, new() { Name = "console-new-1" }).ClickAsync();
        var temperature = await page.Locator("tr[data-metric=temperature] td.value").InnerTextAsync();
        using var again = await env.Client.GetAsync("/api/v1/devices/console-new-1");

        Assert.Equal("Device id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'", invalid);
        Assert.Equal(43, token.Length);
        Assert.Contains($"-p {env.Application.MqttPort} -i console-new-1 -u console-new-1 -P '{token}'", command, StringComparison.Ordinal);
        Assert.True(published.ExitCode == 0, $"mosquitto_pub: {published}");
        Assert.Equal("21.5", temperature);
        Assert.DoesNotContain(token, await again.Content.ReadAsStringAsync(), StringComparison.Ordinal); // shown once only
    }

    [Fact]
    public async Task Desired_state_edited_in_the_console_reaches_the_device_and_a_command_sent_from_it_succeeds()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("console-valve-1", "actuator"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "console-valve-1", token);
        await device.SubscribeAsync("device/console-valve-1/#");
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices/console-valve-1").ToString());
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        await page.GetByLabel("Desired state").FillAsync("""{"open": 40""");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save desired (version 0)" }).ClickAsync();
        var invalid = await page.GetByRole(AriaRole.Alert).InnerTextAsync();
        await page.GetByLabel("Desired state").FillAsync("""{"open": 40}""");

        // The form posts and redirects (post, redirect, get): wait for that navigation before the test reloads.
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Save desired (version 0)" }));
        var delta = await device.NextAsync("device/console-valve-1/shadow/delta");
        await device.PublishAsync("device/console-valve-1/shadow/update", """{"state":{"reported":{"open":40}}}""");
        await device.NextAsync("device/console-valve-1/shadow/update/accepted");
        await page.ReloadAsync();
        var closed = await page.Locator("pre[data-section=delta]").InnerTextAsync();
        await page.GetByLabel("Command type").FillAsync("flush");
        await page.GetByLabel("Parameters").FillAsync("""{"seconds": 5}""");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Send command" }));
        var command = await device.NextAsync("device/console-valve-1/command");
        await device.PublishAsync("device/console-valve-1/response", $$"""{"command_id":"{{command["command_id"]}}","status":"success"}""");
        var cell = page.Locator($"tr[data-command={command["command_id"]}] td.state");
        await ConsoleBrowser.TextWhenAsync(cell, s => s == "succeeded", "the command succeeded on the device page");
        await page.ReloadAsync();
        var state = await cell.InnerTextAsync(); // as the server renders it
        await ConsoleBrowser.ScreenshotAsync(page, "device-shadow-command");
        var commandRows = await page.Locator("tbody tr[data-command]").CountAsync();

        Assert.StartsWith("Not valid JSON", invalid, StringComparison.Ordinal);
        Assert.Equal(40, (int)delta["state"]!["open"]!);
        Assert.Equal("{}", closed.Trim());
        Assert.Equal("flush", (string?)command["type"]);
        Assert.Equal(5, (int)command["parameters"]!["seconds"]!);
        Assert.Equal("succeeded", state);
        Assert.Equal(1, commandRows); // reloading after the post did not send it again
    }

    [Fact]
    public async Task The_system_page_shows_readiness_broker_figures_the_store_and_the_process()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("console-sys-1"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "console-sys-1", token);
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/system").ToString());
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        var checks = await page.Locator("ul.checks li").AllInnerTextsAsync();
        var connections = await page.Locator("[data-figure=connections]").InnerTextAsync();
        var rateIn = await page.Locator("[data-figure=rate-in]").InnerTextAsync();
        var registry = await page.Locator("[data-file='fieldline.db']").InnerTextAsync();
        var version = await page.Locator("[data-figure=version]").InnerTextAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "system");

        Assert.NotEmpty(checks);
        Assert.All(checks, c => Assert.EndsWith(": ready", c, StringComparison.Ordinal));
        Assert.Equal("1", connections);
        Assert.Matches(@"^(—|\d+\.\d) \(MQTT and CoAP", rateIn);
        Assert.Matches(@"^\d+(\.\d)? (B|KiB|MiB)$", registry);
        Assert.NotEqual("unknown", version);
    }

    [Fact]
    public async Task A_page_that_fails_on_the_server_shows_a_readable_error_with_the_trace_id()
    {
        // A readiness check that throws makes the system page fail while it renders.
        await using var env = await TestEnvironment.StartAsync(configureServices: services => services.AddSingleton<Fieldline.Hosting.IReadinessCheck, BrokenCheck>());
        env.Logs.Expect(e => e.Exception is InvalidOperationException { Message: BrokenCheck.Failure });
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/");

        var response = await page.GotoAsync(new Uri(env.Application.HttpUrl, "/system").ToString());
        var alert = await page.GetByRole(AriaRole.Alert).InnerTextAsync();
        var trace = await page.Locator("code").InnerTextAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "error");
        await page.GetByRole(AriaRole.Link, new() { Name = "Overview" }).ClickAsync();
        var overview = await page.GetByRole(AriaRole.Heading, new() { Level = 1 }).InnerTextAsync();

        Assert.Equal(500, response!.Status);
        Assert.StartsWith("Fieldline could not show this page", alert, StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{32}$", trace);
        Assert.Contains(env.Logs.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Error && e.Exception is InvalidOperationException && e.Message.Contains(trace, StringComparison.Ordinal));
        Assert.StartsWith("Overview", overview, StringComparison.Ordinal);
    }

    private sealed class BrokenCheck : Fieldline.Hosting.IReadinessCheck
    {
        public const string Failure = "the check itself failed";

        public string Name => "broken";

        public bool IsReady => throw new InvalidOperationException(Failure);
    }
}
