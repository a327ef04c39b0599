using System.Globalization;
using Fieldline.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Fieldline.Tests.WebConsole;

/// <summary>
/// The console's live views in real headless Chromium: values, charts, shadow and command states that change while
/// the page stays loaded. Each test marks the page's window object and checks the mark at the end: a reload would
/// have wiped it.
/// </summary>
[Collection(ConsoleBrowser.Collection)]
public sealed class ConsoleLiveTests
{
    [Fact]
    public async Task Telemetry_published_with_mosquitto_pub_changes_the_latest_value_and_the_chart_without_a_reload()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("live-th-1"))["token"]!;
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await env.Telemetry.AppendAsync(
            new Fieldline.Core.Telemetry.TelemetryPoint[] { new("live-th-1", "temperature", start - 120_000, 20.0, "°C"), new("live-th-1", "temperature", start - 60_000, 20.5, "°C") },
            default);
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices/live-th-1");
        var chart = page.Locator("[data-chart-metric=temperature] [data-chart]");
        var before = await ConsoleBrowser.TextWhenAsync(page.Locator("[data-chart-metric=temperature] [data-chart-status]"), s => s.Contains("points", StringComparison.Ordinal), "the chart loaded");
        var pointsBefore = await chart.GetAttributeAsync("data-points");
        await page.Locator("[data-live-state=open]").WaitForAsync();
        await page.EvaluateAsync("() => window.fieldlineMark = 'same page'");

        var published = await ExternalProcess.RunAsync("mosquitto_pub", [
            "-h", "127.0.0.1", "-p", $"{env.Application.MqttPort}", "-i", "live-th-1", "-u", "live-th-1", "-P", token,
            "-q", "1", "-t", "sensor/live-th-1/telemetry", "-m", """{"type":"temperature","value":42.25,"unit":"°C"}"""]);
        var latest = await ConsoleBrowser.TextWhenAsync(page.Locator("tr[data-metric=temperature] td.value"), s => s == "42.25", "the latest value 42.25");
        var pointsAfter = await Poll.UntilAsync(() => chart.GetAttributeAsync("data-points"), p => p != pointsBefore, "the chart gained the point");
        var after = await page.Locator("[data-chart-metric=temperature] [data-chart-status]").InnerTextAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "device-live");
        var mark = await page.EvaluateAsync<string?>("() => window.fieldlineMark");

        Assert.True(published.ExitCode == 0, $"mosquitto_pub: {published}");
        Assert.Equal("2 points, mean per 1 s", before);
        Assert.Equal("2", pointsBefore);
        Assert.Equal("42.25", latest);
        Assert.Equal("3", pointsAfter);
        Assert.Equal("3 points, the newest as they arrive", after);
        Assert.Equal("same page", mark);
    }

    [Fact]
    public async Task A_chart_range_asks_the_aggregate_api_for_at_most_a_thousand_buckets_and_an_api_error_reads_as_a_message()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("live-range-1");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var points = Enumerable.Range(0, 3000).Select(i => new Fieldline.Core.Telemetry.TelemetryPoint("live-range-1", "pressure", now - (i * 60_000L), 1000 + (i % 7), "hPa")).ToArray();
        await env.Telemetry.AppendAsync(points, default);
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices/live-range-1");
        var figure = page.Locator("[data-chart-metric=pressure]");
        var status = figure.Locator("[data-chart-status]");
        var requests = new List<string>();
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/aggregate", StringComparison.Ordinal))
            {
                requests.Add(request.Url);
            }
        };

        await ConsoleBrowser.TextWhenAsync(status, s => s.Contains("points", StringComparison.Ordinal), "the 15 min chart loaded");
        await figure.GetByRole(AriaRole.Button, new() { Name = "7 d" }).ClickAsync();
        var week = await ConsoleBrowser.TextWhenAsync(status, s => s.Contains("per 605 s", StringComparison.Ordinal), "the 7 d chart in 605 s buckets");
        var weekPoints = int.Parse((await figure.Locator("[data-chart]").GetAttributeAsync("data-points"))!, CultureInfo.InvariantCulture);
        var pressed = await figure.GetByRole(AriaRole.Button, new() { Name = "7 d" }).GetAttributeAsync("aria-pressed");
        await figure.GetByRole(AriaRole.Button, new() { Name = "Custom" }).ClickAsync();
        await figure.GetByLabel("From").FillAsync("2026-01-02T00:00");
        await figure.GetByLabel("To").FillAsync("2026-01-01T00:00");
        await figure.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        var backwards = await ConsoleBrowser.TextWhenAsync(status, s => s.Contains("start before its end", StringComparison.Ordinal), "the custom range refused");
        using (var deleted = await env.Client.DeleteAsync("/api/v1/devices/live-range-1"))
        {
            deleted.EnsureSuccessStatusCode();
        }

        await figure.GetByRole(AriaRole.Button, new() { Name = "1 h" }).ClickAsync();
        var problem = await ConsoleBrowser.TextWhenAsync(status, s => s.StartsWith("Could not load", StringComparison.Ordinal), "the API's 404 shown");

        Assert.Contains("interval=605s", requests.Last(r => r.Contains("605s", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.InRange(weekPoints, 296, 299); // 3,000 points a minute apart: 50 hours in 605 s buckets
        Assert.StartsWith($"{weekPoints} points", week, StringComparison.Ordinal);
        Assert.Equal("true", pressed);
        Assert.Equal("The custom range needs a start before its end.", backwards);
        Assert.Equal("Could not load the chart: Device not found: No device has the id 'live-range-1'.", problem);
    }

    [Fact]
    public async Task The_delta_closes_and_the_command_reaches_succeeded_on_the_page_as_the_device_answers()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("live-valve-1", "actuator"))["token"]!;
        await using var device = await DeviceMqttClient.ConnectAsync(env, "live-valve-1", token);
        await device.SubscribeAsync("device/live-valve-1/#");
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/devices/live-valve-1");
        await page.GetByLabel("Desired state").FillAsync("""{"open": 40}""");
        await ConsoleBrowser.SubmitAsync(page, page.GetByRole(AriaRole.Button, new() { Name = "Save desired (version 0)" }));
        var delta = await device.NextAsync("device/live-valve-1/shadow/delta");
        await page.Locator("[data-live-state=open]").WaitForAsync();
        var open = await page.Locator("pre[data-section=delta]").InnerTextAsync();
        await page.EvaluateAsync("() => window.fieldlineMark = 'same page'");

        await device.PublishAsync("device/live-valve-1/shadow/update", """{"state":{"reported":{"open":40}}}""");
        var closed = await ConsoleBrowser.TextWhenAsync(page.Locator("pre[data-section=delta]"), s => s.Trim() == "{}", "the delta closed");
        var reported = await page.Locator("pre[data-section=reported]").InnerTextAsync();
        var version = await page.Locator("[data-shadow-version]").InnerTextAsync();
        var highlighted = await page.Locator(".delta.open").CountAsync();
        using (var created = await env.Client.PostAsync("/api/v1/devices/live-valve-1/commands", new StringContent("""{"type":"flush"}""", System.Text.Encoding.UTF8, "application/json")))
        {
            created.EnsureSuccessStatusCode();
        }

        var command = await device.NextAsync("device/live-valve-1/command");
        var row = page.Locator($"tr[data-command='{command["command_id"]}'] td.state");
        var delivered = await ConsoleBrowser.TextWhenAsync(row, s => s == "delivered", "the command delivered on the page");
        await device.PublishAsync("device/live-valve-1/response", $$"""{"command_id":"{{command["command_id"]}}","status":"success"}""");
        var succeeded = await ConsoleBrowser.TextWhenAsync(row, s => s == "succeeded", "the command succeeded on the page");
        var events = await page.Locator("[data-live-events] tbody tr").AllInnerTextsAsync();
        await ConsoleBrowser.ScreenshotAsync(page, "device-shadow-command-live");
        var mark = await page.EvaluateAsync<string?>("() => window.fieldlineMark");

        Assert.Equal(40, (int)delta["state"]!["open"]!);
        Assert.Contains("\"open\": 40", open, StringComparison.Ordinal);
        Assert.Equal("{}", closed.Trim());
        Assert.Contains("\"open\": 40", reported, StringComparison.Ordinal);
        Assert.Equal("2", version);
        Assert.Equal(0, highlighted);
        Assert.Equal("delivered", delivered);
        Assert.Equal("succeeded", succeeded);
        Assert.Contains(events, e => e.Contains("CommandStateChanged", StringComparison.Ordinal) && e.Contains("succeeded", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Contains("ShadowUpdated", StringComparison.Ordinal) && e.Contains("version 2", StringComparison.Ordinal));
        Assert.Equal("same page", mark);
    }

    [Fact]
    public async Task The_overview_draws_messages_per_second_and_adds_events_as_they_happen()
    {
        await using var env = await TestEnvironment.StartAsync();
        var token = (string)(await env.RegisterAsync("live-ov-1"))["token"]!;
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/");
        await page.Locator("[data-live-state=open]").WaitForAsync();
        await page.EvaluateAsync("() => window.fieldlineMark = 'same page'");

        await using var device = await DeviceMqttClient.ConnectAsync(env, "live-ov-1", token);
        var online = await ConsoleBrowser.TextWhenAsync(page.Locator("[data-status=online]"), s => s == "1", "one device online");
        var clients = await ConsoleBrowser.TextWhenAsync(page.Locator("[data-figure=mqtt-clients]"), s => s == "1", "one MQTT client");
        var connected = await ConsoleBrowser.TextWhenAsync(
            page.Locator("[data-live-events] tbody tr").First, s => s.Contains("DeviceConnected", StringComparison.Ordinal), "the DeviceConnected event listed");

        // Messages keep flowing until a one-second sample shows them.
        var rate = await Poll.UntilAsync(
            async () =>
            {
                await device.PublishAsync("sensor/live-ov-1/telemetry", """{"type":"temperature","value":21}""");
                return double.Parse((await page.Locator("[data-chart=traffic]").GetAttributeAsync("data-last-in")) ?? "0", CultureInfo.InvariantCulture);
            },
            r => r > 0,
            "a sample with messages in");
        var samples = int.Parse((await page.Locator("[data-chart=traffic]").GetAttributeAsync("data-samples"))!, CultureInfo.InvariantCulture);
        await ConsoleBrowser.ScreenshotAsync(page, "overview-live");
        var mark = await page.EvaluateAsync<string?>("() => window.fieldlineMark");

        Assert.Equal("1", online);
        Assert.Equal("1", clients);
        Assert.Contains("live-ov-1", connected, StringComparison.Ordinal);
        Assert.True(rate > 0, $"expected messages in per second above 0, saw {rate}");
        Assert.True(samples >= 1, $"expected samples on the chart, saw {samples}");
        Assert.Equal("same page", mark);
    }

    [Fact]
    public async Task The_console_cookie_reads_the_api_but_cannot_write_through_it()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("live-cookie-1");
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenSignedInAsync(env, "/");

        var read = await page.APIRequest.GetAsync(new Uri(env.Application.HttpUrl, "/api/v1/devices/live-cookie-1").ToString());
        var write = await page.APIRequest.DeleteAsync(new Uri(env.Application.HttpUrl, "/api/v1/devices/live-cookie-1").ToString());
        using var anonymousClient = new HttpClient { BaseAddress = env.Application.HttpUrl };
        using var anonymous = await anonymousClient.GetAsync("/api/v1/devices/live-cookie-1");

        Assert.Equal(200, read.Status);
        Assert.Equal(401, write.Status);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }
}
