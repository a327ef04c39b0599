using System.Diagnostics;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Diagnostics;

namespace Fieldline.WebConsole;

/// <summary>
/// A console page that fails answers with a readable page, not a blank one or a JSON problem: what happened, the
/// trace id to find the logged error by, and a way back. The API keeps its problem details: only browser requests
/// for HTML outside <c>/api</c> are answered here.
/// </summary>
/// <remarks>
/// The exception handler middleware of .NET 10 does not log an exception that an <see cref="IExceptionHandler"/>
/// handled, so this logs it, with the trace id the page shows.
/// </remarks>
internal sealed partial class ConsoleErrorPage(ILogger<ConsoleErrorPage> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var request = httpContext.Request;
        if (request.Path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase)
            || !request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var trace = Activity.Current?.TraceId.ToString() ?? httpContext.TraceIdentifier;
        LogPageFailed(logger, exception, request.Path, trace);
        var traceId = HtmlEncoder.Default.Encode(trace);
        httpContext.Response.StatusCode = StatusCodes.Status500InternalServerError;
        httpContext.Response.ContentType = "text/html; charset=utf-8";
        await httpContext.Response.WriteAsync(
            $"""
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8" /><meta name="viewport" content="width=device-width, initial-scale=1" />
            <title>Something went wrong · Fieldline</title><link rel="stylesheet" href="/console/console.css" /></head>
            <body><main>
            <h1>Something went wrong</h1>
            <p class="error" role="alert">Fieldline could not show this page: the server failed while preparing it. If you sent a form,
            check whether it was saved before you send it again.</p>
            <p>The error is in the server's log with trace id <code>{traceId}</code>.</p>
            <p><a href="/">Overview</a> · <a href="/devices">Devices</a></p>
            </main></body></html>
            """,
            cancellationToken);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The console page {Path} failed (trace id {TraceId})")]
    private static partial void LogPageFailed(ILogger logger, Exception exception, PathString path, string traceId);
}
