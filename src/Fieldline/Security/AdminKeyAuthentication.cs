using System.Text;
using Fieldline.Core.Security;

namespace Fieldline.Security;

/// <summary>
/// Guards every /api route with the admin API key, presented as <c>Authorization: Bearer KEY</c> or
/// <c>X-Api-Key: KEY</c>. Runs before endpoint binding, so an anonymous request never reaches body parsing.
/// A missing key is 401 with <c>WWW-Authenticate: Bearer</c>; a wrong key is 403.
/// </summary>
/// <remarks>
/// A request without a key that the web console's sign-in cookie authenticated may read: GET and HEAD only. The
/// console's pages draw their charts and live views from the API itself (aggregates, the event stream, live
/// telemetry), and a browser cannot add a header to an EventSource. Writes still need the key; the console writes
/// through its own forms, which carry an antiforgery token. The cookie is SameSite=Strict, so another site cannot
/// make a browser send it.
/// </remarks>
internal sealed partial class AdminKeyAuthentication(RequestDelegate next, IAdminKeyVerifier verifier, ILogger<AdminKeyAuthentication> logger)
{
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>Longer values are rejected without hashing them.</summary>
    private const int MaximumKeyLength = 256;

    public async Task InvokeAsync(HttpContext context)
    {
        var key = ReadPresentedKey(context.Request);
        if (key is null && IsConsoleRead(context))
        {
            await next(context);
            return;
        }

        if (key is null)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Authentication required",
                detail: $"Send the admin API key as 'Authorization: Bearer <key>' or '{ApiKeyHeader}: <key>'.")
                .ExecuteAsync(context);
            return;
        }

        if (key.Length > MaximumKeyLength || !verifier.Verify(Encoding.UTF8.GetBytes(key)))
        {
            LogRejectedKey(logger, context.Request.Path);
            await TypedResults.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "Forbidden",
                detail: "The API key is not valid.")
                .ExecuteAsync(context);
            return;
        }

        await next(context);
    }

    private static bool IsConsoleRead(HttpContext context) =>
        (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method))
        && context.User.Identity is { IsAuthenticated: true, AuthenticationType: WebConsole.ConsoleHosting.Scheme };

    private static string? ReadPresentedKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var token = authorization["Bearer ".Length..].Trim();
            return token.Length == 0 ? null : token;
        }

        var apiKey = request.Headers[ApiKeyHeader].ToString().Trim();
        return apiKey.Length == 0 ? null : apiKey;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected a request to {Path} with an invalid API key")]
    private static partial void LogRejectedKey(ILogger logger, PathString path);
}
