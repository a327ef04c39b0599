namespace Fieldline.Apis;

/// <summary>
/// Writes an async sequence as Server-Sent Events, one frame per item, flushed at once, with a comment line every
/// 15 s while nothing else is sent so that proxies do not close an idle stream. Shared by every streaming endpoint.
/// A stream also ends when the host begins to stop: Kestrel waits for open requests, and a browser tab left open must
/// not hold up a shutdown (and the flush of the stores after it) for the host's whole shutdown timeout.
/// </summary>
internal static class ServerSentEventStream
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Starts the stream and writes <paramref name="frame"/> of each item until the sequence ends or
    /// <paramref name="cancellationToken"/> (the request's) is cancelled. A frame is complete SSE text, ending with a blank line.
    /// </summary>
    public static async Task WriteAsync<T>(
        HttpResponse response, IAsyncEnumerable<T> items, Func<T, string> frame, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";

        var stopping = response.HttpContext.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping);
        try
        {
            await WriteFramesAsync(response, items, frame, timeProvider, ending.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // The host is stopping: the stream ends, and the client reconnects to the next instance.
        }
    }

    private static async Task WriteFramesAsync<T>(
        HttpResponse response, IAsyncEnumerable<T> items, Func<T, string> frame, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        using var heartbeat = new PeriodicTimer(Heartbeat, timeProvider);
        var beat = heartbeat.WaitForNextTickAsync(cancellationToken).AsTask();
        var stream = items.GetAsyncEnumerator(cancellationToken);
        Task<bool>? next = null;
        try
        {
            // The first MoveNextAsync subscribes (it runs the source up to its first wait), and only then does the
            // client hear that it is connected: whatever happens after ": connected" reaches it.
            next = stream.MoveNextAsync().AsTask();
            await response.WriteAsync(": connected\n\n", cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
            while (true)
            {
                if (await Task.WhenAny(next, beat) == beat)
                {
                    await response.WriteAsync(": keep-alive\n\n", cancellationToken);
                    await response.Body.FlushAsync(cancellationToken);
                    beat = heartbeat.WaitForNextTickAsync(cancellationToken).AsTask();
                    continue;
                }

                if (!await next)
                {
                    return;
                }

                await response.WriteAsync(frame(stream.Current), cancellationToken);
                await response.Body.FlushAsync(cancellationToken);
                next = stream.MoveNextAsync().AsTask();
            }
        }
        finally
        {
            // An enumerator cannot be disposed while a MoveNextAsync runs: let the pending one end (the token is
            // cancelled when the client has gone) before disposing.
            if (next is not null)
            {
                await ((Task)next).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await stream.DisposeAsync();
        }
    }
}
