using System.Security.Claims;
using System.Text;
using Fieldline.Core.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace Fieldline.WebConsole;

/// <summary>
/// Signs an operator in with the admin API key: the key is checked in constant time, failures are limited per
/// source address (10 a minute), and success leaves the console's HTTP-only cookie. The key itself is never stored
/// in the cookie or logged.
/// </summary>
internal sealed partial class ConsoleSignIns(IAdminKeyVerifier verifier, TimeProvider timeProvider, ILogger<ConsoleSignIns> logger)
{
    /// <summary>Failed sign-ins tolerated per address per minute.</summary>
    public const int MaximumFailuresPerSource = 10;

    private const int MaximumKeyLength = 256;

    private readonly FailedAttemptLimiter _failures = new(MaximumFailuresPerSource, TimeSpan.FromMinutes(1), timeProvider);

    /// <summary>Null when signed in; otherwise why not, to show on the form.</summary>
    public async Task<string?> SignInAsync(HttpContext context, string? key)
    {
        var source = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (_failures.IsBlocked(source))
        {
            return "Too many failed sign-ins from this address; try again in a minute.";
        }

        key = key?.Trim();
        if (string.IsNullOrEmpty(key) || key.Length > MaximumKeyLength || !verifier.Verify(Encoding.UTF8.GetBytes(key)))
        {
            _failures.RecordFailure(source);
            LogRefused(source);
            return "That is not the admin API key.";
        }

        _failures.Reset(source);
        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, "admin"), new Claim(ClaimTypes.Role, "admin"), new Claim(KeyStampClaim, verifier.KeyStamp ?? "")],
            ConsoleHosting.Scheme);
        await context.SignInAsync(ConsoleHosting.Scheme, new ClaimsPrincipal(identity));
        return null;
    }

    /// <summary>The claim that carries the admin key's stamp at sign-in.</summary>
    public const string KeyStampClaim = "fieldline:key_stamp";

    /// <summary>
    /// Ends a console session signed in under another admin key: changing the key signs everyone out, as changing a
    /// password would. Runs on every request that carries the cookie (a claim comparison, no I/O).
    /// </summary>
    public async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var stamp = context.Principal?.FindFirst(KeyStampClaim)?.Value;
        if (stamp is null || verifier.KeyStamp is not { } current || !string.Equals(stamp, current, StringComparison.Ordinal))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(ConsoleHosting.Scheme);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A console sign-in from {Source} was refused: wrong admin API key")]
    private partial void LogRefused(string source);
}
