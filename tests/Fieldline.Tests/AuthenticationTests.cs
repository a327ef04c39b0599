using System.Net;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests;

public sealed class AuthenticationTests
{
    [Fact]
    public async Task A_request_without_a_key_is_unauthorized_with_a_bearer_challenge()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = env.CreateClient();

        using var response = await anonymous.GetAsync("/api/v1/devices");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_request_with_a_wrong_key_is_forbidden()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var client = env.CreateClient("not-the-admin-key");

        using var response = await client.GetAsync("/api/v1/devices");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task An_unauthenticated_post_with_malformed_json_is_unauthorized_not_bad_request()
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = env.CreateClient();

        using var response = await anonymous.PostAsync("/api/v1/devices", new StringContent("{", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task The_admin_key_is_accepted_as_bearer_token_or_x_api_key()
    {
        await using var env = await TestEnvironment.StartAsync();

        using var bearer = await env.Client.GetAsync("/api/v1/devices");
        Assert.Equal(HttpStatusCode.OK, bearer.StatusCode);

        using var anonymous = env.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/devices");
        request.Headers.Add("X-Api-Key", TestEnvironment.AdminKey);
        using var apiKey = await anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, apiKey.StatusCode);
    }

    [Theory]
    [InlineData("/health")]
    [InlineData("/ready")]
    [InlineData("/metrics")]
    [InlineData("/openapi/v1.json")]
    public async Task Operational_endpoints_are_open(string path)
    {
        await using var env = await TestEnvironment.StartAsync();
        using var anonymous = env.CreateClient();

        using var response = await anonymous.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
