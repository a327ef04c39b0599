using System.Net.Http.Json;
using Fieldline.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Fieldline.Tests.WebConsole;

/// <summary>Managing devices from the console in real headless Chromium: edit, maintenance, token rotation, deletion, sorting and search.</summary>
[Collection(ConsoleBrowser.Collection)]
public sealed class ConsoleDeviceManagementTests
{
    [Fact]
    public async Task A_device_is_edited_put_in_maintenance_and_back_from_its_page()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("manage-th-1"))["token"]!;
        var device = await DeviceMqttClient.ConnectAsync(env, "manage-th-1", token);
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices/manage-th-1");

        await page.GetByRole(AriaRole.Link, new() { Name = "Edit" }).ClickAsync();
        var shown = await page.GetByLabel("Status").InputValueAsync();

        // The device goes away while the form is open: saving the form must not write its old status back.
        await device.DisposeAsync();
        await Poll.UntilAsync(async () => (string?)(await GetDeviceAsync(env))["status"], s => s == "offline", "the device offline");
        await page.GetByLabel("Name").FillAsync("");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Save" }));
        var invalid = await page.GetByRole(AriaRole.Alert).First.InnerTextAsync();
        await page.GetByLabel("Name").FillAsync("Boiler room sensor");
        await page.GetByLabel("Location").FillAsync("basement");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Save" }));
        var heading = await page.GetByRole(AriaRole.Heading, new() { Level = 1 }).InnerTextAsync();
        var saved = await GetDeviceAsync(env);

        await using var again = await DeviceMqttClient.ConnectAsync(env, "manage-th-1", token);
        await page.ReloadAsync();
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Set maintenance" }));
        var maintenance = await page.Locator("[data-device-status]").InnerTextAsync();
        await Poll.UntilAsync(() => Task.FromResult(again.Client.IsConnected), c => !c, "the device disconnected by maintenance");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "End maintenance" }));
        var after = await page.Locator("[data-device-status]").InnerTextAsync();

        Assert.Equal("online", shown);
        Assert.Equal("Name is required", invalid);
        Assert.StartsWith("Boiler room sensor", heading, StringComparison.Ordinal);
        Assert.Equal("offline", (string?)saved["status"]);
        Assert.Equal("basement", (string?)saved["location"]);
        Assert.Equal("sensor", (string?)saved["type"]);
        Assert.Equal("maintenance", maintenance);
        Assert.Equal("offline", after);
    }

    private static async Task<System.Text.Json.Nodes.JsonObject> GetDeviceAsync(TestEnvironment env) =>
        (await env.Client.GetFromJsonAsync<System.Text.Json.Nodes.JsonObject>("/api/v1/devices/manage-th-1"))!;

    [Fact]
    public async Task A_rotated_token_is_shown_once_and_only_the_new_token_connects()
    {
        await using var env = await TestEnvironment.StartAsync();
        var old = (string)(await env.RegisterAsync("manage-rot-1"))["token"]!;
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices/manage-rot-1");

        await page.GetByRole(AriaRole.Link, new() { Name = "Rotate token" }).ClickAsync();
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Rotate token" }));
        var token = await page.GetByLabel("Token").InputValueAsync();
        var command = await page.GetByLabel("Send a reading with mosquitto_pub").InputValueAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "rotate-token");
        var withNew = await ExternalProcess.RunAsync("bash", ["-c", command]);
        var withOld = await ExternalProcess.RunAsync("bash", ["-c", command.Replace(token, old, StringComparison.Ordinal)]);
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices/manage-rot-1/token").ToString());
        var shownAgain = await page.GetByLabel("Token").CountAsync();

        Assert.Equal(43, token.Length);
        Assert.NotEqual(old, token);
        Assert.True(withNew.ExitCode == 0, $"mosquitto_pub with the new token: {withNew}");
        Assert.True(withOld.ExitCode != 0, $"mosquitto_pub with the old token should be refused: {withOld}");
        Assert.Equal(0, shownAgain);
    }

    [Fact]
    public async Task Deleting_a_device_asks_for_its_id_and_then_removes_it()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("manage-del-1");
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices/manage-del-1");

        await page.GetByRole(AriaRole.Link, new() { Name = "Delete" }).ClickAsync();
        await page.GetByLabel("Type the device id").FillAsync("manage-del-2");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Delete device" }));
        var refused = await page.GetByRole(AriaRole.Alert).InnerTextAsync();
        using var stillThere = await env.Client.GetAsync("/api/v1/devices/manage-del-1");
        await ConsoleBrowser.ScreenshotAsync(page, "delete-device");
        await page.GetByLabel("Type the device id").FillAsync("manage-del-1");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Delete device" }));
        var done = await page.GetByRole(AriaRole.Status).InnerTextAsync();
        using var gone = await env.Client.GetAsync("/api/v1/devices/manage-del-1");

        Assert.Equal("The id typed does not match 'manage-del-1'; nothing was deleted.", refused);
        Assert.Equal(System.Net.HttpStatusCode.OK, stillThere.StatusCode);
        Assert.Equal("Device manage-del-1 was deleted with its shadow and telemetry.", done);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task The_devices_table_sorts_by_a_column_header_pages_in_that_order_and_searches_names()
    {
        await using var env = await TestEnvironment.StartAsync();
        for (var i = 0; i < 60; i++)
        {
            using var response = await env.Client.PostAsync("/api/v1/devices", new StringContent(
                $$"""{"device_id":"sort-{{i:D2}}","name":"{{(char)('A' + (i % 26))}} unit {{i:D2}}","type":"sensor"}""", System.Text.Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
        }

        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices");
        await page.GetByRole(AriaRole.Link, new() { Name = "Name" }).ClickAsync();
        await ConsoleBrowser.WaitForPageAsync(page, url => url.Contains("sort=name", StringComparison.Ordinal));
        await page.GetByRole(AriaRole.Link, new() { Name = "Name ▲" }).ClickAsync();
        await ConsoleBrowser.WaitForPageAsync(page, url => url.Contains("sort=-name", StringComparison.Ordinal));
        var ariaSort = await page.Locator("th[aria-sort]").GetAttributeAsync("aria-sort");
        var first = await page.Locator("tbody tr td:nth-child(2)").AllInnerTextsAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Next page" }).ClickAsync();
        var second = await page.Locator("tbody tr td:nth-child(2)").AllInnerTextsAsync();
        await page.GetByLabel("Search id or name").FillAsync("unit 3");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        await ConsoleBrowser.WaitForPageAsync(page, url => url.Contains("q=unit", StringComparison.Ordinal));
        var searched = await page.Locator("tbody tr td:nth-child(2)").AllInnerTextsAsync();

        var expected = Enumerable.Range(0, 60).Select(i => $"{(char)('A' + (i % 26))} unit {i:D2}").OrderByDescending(n => n, StringComparer.Ordinal).ToList();
        Assert.Equal("descending", ariaSort);
        Assert.Equal(expected.Take(50), first);
        Assert.Equal(expected.Skip(50), second);
        Assert.Equal(Enumerable.Range(30, 10).Select(i => $"{(char)('A' + (i % 26))} unit {i:D2}").OrderByDescending(n => n, StringComparer.Ordinal), searched);
    }

    [Fact]
    public async Task The_console_is_used_from_the_keyboard_and_every_control_has_a_label()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("keys-th-1");
        await env.Telemetry.AppendAsync(new[] { new Fieldline.Core.Telemetry.TelemetryPoint("keys-th-1", "humidity", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 40, "%") }, default);
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/sign-in").ToString());

        // Sign in without the mouse: the key field has the focus, Enter submits.
        var focused = await page.EvaluateAsync<string>("() => document.activeElement.id");
        await page.Keyboard.TypeAsync(TestEnvironment.AdminKey);
        await page.Keyboard.PressAsync("Enter");
        await page.Locator("[data-live-state=open]").WaitForAsync(); // the page and its script are done loading

        // Tab reaches the navigation; Enter follows the link.
        var visited = new List<string>();
        for (var i = 0; i < 10 && (visited.Count == 0 || visited[^1] != "Devices"); i++)
        {
            await page.Keyboard.PressAsync("Tab");
            visited.Add(await page.EvaluateAsync<string>("() => document.activeElement.textContent.trim()"));
        }

        Assert.True(visited[^1] == "Devices", $"expected Tab to reach the Devices link, it went through: {string.Join(" | ", visited)}");
        await page.Keyboard.PressAsync("Enter");
        await page.GetByRole(AriaRole.Heading, new() { Name = "Devices", Level = 1 }).WaitForAsync();
        var name = visited[^1];
        var unlabelled = new Dictionary<string, string[]>();
        foreach (var path in new[] { "/", "/devices", "/devices/new", "/devices/keys-th-1", "/devices/keys-th-1/edit", "/devices/keys-th-1/delete", "/system" })
        {
            await page.GotoAsync(new Uri(env.Application.HttpUrl, path).ToString());
            unlabelled[path] = await page.EvaluateAsync<string[]>("""
                () => [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
                    .filter(e => !e.closest("[hidden]"))
                    .filter(e => !(e.labels?.length || e.getAttribute("aria-label") || (e.tagName === "BUTTON" && e.textContent.trim())))
                    .map(e => e.outerHTML)
                """);
        }

        Assert.Equal("key", focused);
        Assert.Equal("Devices", name);
        Assert.All(unlabelled, page => Assert.True(page.Value.Length == 0, $"{page.Key} has controls without a label: {string.Join(", ", page.Value)}"));
    }

    [Fact]
    public async Task Every_page_fits_a_phone_width_screen_without_sideways_scrolling()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("phone-th-with-a-long-device-id-1");
        await env.Telemetry.AppendAsync(new[] { new Fieldline.Core.Telemetry.TelemetryPoint("phone-th-with-a-long-device-id-1", "temperature", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 21.5, "°C") }, default);
        using (var command = await env.Client.PostAsync("/api/v1/devices/phone-th-with-a-long-device-id-1/commands", new StringContent("""{"type":"calibrate"}""", System.Text.Encoding.UTF8, "application/json")))
        {
            command.EnsureSuccessStatusCode();
        }

        await using var browser = await ConsoleBrowser.LaunchAsync(width: 390, height: 844);
        var page = await browser.OpenSignedInAsync(env, "/");
        var overflowing = new List<string>();
        foreach (var path in new[] { "/", "/devices", "/devices/new", "/devices/phone-th-with-a-long-device-id-1", "/devices/phone-th-with-a-long-device-id-1/edit", "/system" })
        {
            await page.GotoAsync(new Uri(env.Application.HttpUrl, path).ToString());
            if (await page.Locator("[data-chart-status]").CountAsync() > 0)
            {
                // The charts are drawn by script after the load: measure once they are there.
                await ConsoleBrowser.TextWhenAsync(page.Locator("[data-chart-status]").First, s => s.Length > 0 && s != "Loading…", "the chart drawn");
            }

            var widths = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, window.innerWidth]");
            if (widths[0] > widths[1])
            {
                overflowing.Add($"{path}: {widths[0]} px wide in a {widths[1]} px window");
            }
        }

        await page.GotoAsync(new Uri(env.Application.HttpUrl, "/devices/phone-th-with-a-long-device-id-1").ToString());
        await ConsoleBrowser.ScreenshotAsync(page, "device-phone");

        Assert.Empty(overflowing);
    }
}
