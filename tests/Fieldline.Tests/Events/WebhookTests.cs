using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Events;

public sealed class WebhookTests
{
    private static readonly Dictionary<string, string?> FastRetries = new() { ["Webhooks:RetryBaseDelay"] = "00:00:00.050" };

    [Fact]
    public async Task A_receiver_gets_signed_events_again_after_it_returned_500_and_the_figures_show_it()
    {
        await using var receiver = await WebhookReceiver.StartAsync(failFirst: 1);
        await using var env = await TestEnvironment.StartAsync(configuration: FastRetries);
        var created = await CreateAsync(env, $$"""{"url":"{{receiver.Url}}","event_types":["DeviceRegistered"]}""");
        var secret = (string)created["secret"]!;

        await env.RegisterAsync("wh-1");
        await env.RegisterAsync("wh-2");
        var requests = await Poll.UntilAsync(() => Task.FromResult(receiver.Requests), r => r.Count(x => x.Status == 200) >= 2, "two events delivered");
        var webhook = await Poll.UntilAsync(
            async () => (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/webhooks/{(string)created["id"]!}"))!,
            w => (long)w["deliveries"]!["delivered"]! == 2,
            "the delivered count");

        // The first attempt got 500 and was retried with the same event and signature.
        Assert.Equal(500, requests[0].Status);
        Assert.Equal(requests[0].EventId, requests[1].EventId);
        Assert.All(requests, r =>
        {
            var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(r.Body)));
            Assert.Equal(expected, r.Signature);
            Assert.Equal("DeviceRegistered", r.EventType);
        });
        Assert.Equal(["wh-1", "wh-2"], requests.Where(r => r.Status == 200).Select(r => (string?)JsonNode.Parse(r.Body)!["payload"]!["device_id"]));
        Assert.Equal(200, (int)webhook["deliveries"]!["last_status"]!);
        Assert.Null(webhook["secret"]);
    }

    [Fact]
    public async Task A_webhook_survives_a_restart_and_keeps_signing_with_its_secret()
    {
        await using var receiver = await WebhookReceiver.StartAsync(failFirst: 0);
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string secret;
            await using (var first = await TestEnvironment.StartAsync(dataDir: dataDir, configuration: FastRetries))
            {
                secret = (string)(await CreateAsync(first, $$"""{"url":"{{receiver.Url}}","event_types":["DeviceDeleted"],"secret":"a-secret-of-our-own"}"""))["secret"]!;
                await first.RegisterAsync("wh-3");
            }

            await using var second = await TestEnvironment.StartAsync(dataDir: dataDir, configuration: FastRetries);
            using var deleted = await second.Client.DeleteAsync("/api/v1/devices/wh-3");
            var request = (await Poll.UntilAsync(() => Task.FromResult(receiver.Requests), r => r.Count >= 1, "the DeviceDeleted event after the restart"))[0];

            Assert.Equal("a-secret-of-our-own", secret);
            Assert.Equal("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(request.Body))), request.Signature);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_receiver_that_keeps_failing_opens_the_circuit_and_is_no_longer_called()
    {
        await using var receiver = await WebhookReceiver.StartAsync(failFirst: int.MaxValue);
        await using var env = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?>
        {
            ["Webhooks:MaximumRetries"] = "1",
            ["Webhooks:RetryBaseDelay"] = "00:00:00.010",
            ["Webhooks:BreakDuration"] = "00:10:00",
        });
        var id = (string)(await CreateAsync(env, $$"""{"url":"{{receiver.Url}}","event_types":["DeviceRegistered"]}"""))["id"]!;

        for (var i = 0; i < 8; i++)
        {
            await env.RegisterAsync($"cb-{i}");
        }

        var webhook = await Poll.UntilAsync(
            async () => (await env.Client.GetFromJsonAsync<JsonObject>($"/api/v1/webhooks/{id}"))!,
            w => (long)w["deliveries"]!["failed"]! == 8,
            "all eight events failed");

        // Two attempts per event (one retry): after ten failures in a row the circuit opens, and the last three
        // events fail without reaching the receiver.
        Assert.Equal(10, receiver.Requests.Count);
        Assert.Equal("open", (string?)webhook["deliveries"]!["circuit"]);
        Assert.Equal(0, (long)webhook["deliveries"]!["delivered"]!);
    }

    [Theory]
    [InlineData("""{"url":"ftp://example.org/hook"}""", "url")]
    [InlineData("""{"url":"http://127.0.0.1/hook","event_types":["Nope"]}""", "event_types")]
    [InlineData("""{"url":"http://127.0.0.1/hook","secret":"short"}""", "secret")]
    public async Task A_bad_webhook_gets_400_naming_the_field(string body, string field)
    {
        await using var env = await TestEnvironment.StartAsync();

        using var response = await env.Client.PostAsync("/api/v1/webhooks", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(problem["errors"]?[field] is not null, $"expected an error for '{field}', saw {problem.ToJsonString()}");
    }

    private static async Task<JsonObject> CreateAsync(TestEnvironment env, string body)
    {
        using var response = await env.Client.PostAsync("/api/v1/webhooks", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"expected 201, saw {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }
}
