using System.Net;
using Fieldline.Tests.Infrastructure;
using Fieldline.WebConsole;

namespace Fieldline.Tests.WebConsole;

public sealed class ConsoleAssetsTests
{
    [Fact]
    public async Task An_asset_linked_with_its_tag_is_cached_for_a_year_and_without_it_is_revalidated()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = new HttpClient { BaseAddress = env.Application.HttpUrl };

        using var tagged = await anonymous.GetAsync(ConsoleAssets.Url("live.js"));
        using var plain = await anonymous.GetAsync("/console/live.js");
        var request = new HttpRequestMessage(HttpMethod.Get, "/console/live.js");
        request.Headers.TryAddWithoutValidation("If-None-Match", plain.Headers.ETag!.ToString());
        using var revalidated = await anonymous.SendAsync(request);
        using var licence = await anonymous.GetAsync("/console/uPlot-LICENSE.txt");
        using var missing = await anonymous.GetAsync("/console/nothing.js");

        Assert.Equal(HttpStatusCode.OK, tagged.StatusCode);
        Assert.Equal("public, max-age=31536000, immutable", tagged.Headers.CacheControl!.ToString());
        Assert.Equal("text/javascript", tagged.Content.Headers.ContentType!.MediaType);
        Assert.Equal("no-cache", plain.Headers.CacheControl!.ToString());
        Assert.Equal(HttpStatusCode.NotModified, revalidated.StatusCode);
        Assert.Contains("MIT License", await licence.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }
}
