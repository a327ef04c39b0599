using Fieldline.WebConsole.Components;
using Microsoft.AspNetCore.Authentication;

namespace Fieldline.WebConsole;

/// <summary>
/// The web console: server-rendered Razor components on the HTTP port at <c>/</c>, behind a sign-in with the admin
/// API key that leaves an HTTP-only cookie. No front-end build: the pages are rendered by the platform itself.
/// </summary>
internal static class ConsoleHosting
{
    /// <summary>The cookie scheme of console sign-ins.</summary>
    public const string Scheme = "fieldline-console";

    public static IServiceCollection AddFieldlineConsole(this IServiceCollection services)
    {
        services.AddRazorComponents();
        services.AddCascadingAuthenticationState();
        services.AddAuthentication(Scheme).AddCookie(Scheme, cookie =>
        {
            cookie.Cookie.Name = "fieldline-console";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Strict;

            // Secure whenever the request came over HTTPS (a TLS proxy in front); plain HTTP on a lab network still works.
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            cookie.LoginPath = "/sign-in";
            cookie.LogoutPath = "/sign-out";
            cookie.ExpireTimeSpan = TimeSpan.FromHours(12);
            cookie.SlidingExpiration = true;
            cookie.Events.OnValidatePrincipal = context => context.HttpContext.RequestServices.GetRequiredService<ConsoleSignIns>().ValidateAsync(context);
        });
        services.AddAuthorization();
        services.AddAntiforgery();
        return services;
    }

    public static void UseFieldlineConsole(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
    }

    public static void MapFieldlineConsole(this WebApplication app)
    {
        app.MapConsoleAssets();
        app.MapRazorComponents<App>();
        app.MapPost("/sign-out", async (HttpContext context) =>
        {
            await context.SignOutAsync(Scheme);
            return TypedResults.LocalRedirect("/sign-in");
        }).RequireAuthorization();
    }
}
