using System.Globalization;
using System.Text;
using Fieldline.Core.Events;
using Microsoft.AspNetCore.Mvc;

namespace Fieldline.Apis;

/// <summary>
/// /api/v1/events: the event stream as Server-Sent Events. <c>?type=A,B</c> and <c>?device=ID</c> filter it; a client
/// that reconnects with <c>Last-Event-ID</c> (or <c>?last_event_id=</c>) first gets what it missed, as long as it is
/// still retained. Each event is <c>id</c> (its event_id), <c>event</c> (its type) and <c>data</c> (the seed's Event JSON);
/// a comment line every 15 s keeps proxies from closing an idle stream.
/// </summary>
internal static partial class EventsApi
{
    public static IEndpointRouteBuilder MapEventsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/events", StreamEvents).WithTags("Events");
        return app;
    }

    private static async Task<IResult> StreamEvents(
        HttpContext context,
        EventBus events,
        TimeProvider timeProvider,
        [FromQuery] string? type,
        [FromQuery] string? device,
        [FromQuery(Name = "last_event_id")] string? lastEventIdQuery,
        ILogger<EventBus> logger,
        CancellationToken cancellationToken)
    {
        var types = (type ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        if (types.FirstOrDefault(t => !EventTypes.All.Contains(t)) is { } unknown)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["type"] = [$"'{unknown}' is not an event type; the types are {string.Join(", ", EventTypes.All)}"] });
        }

        var lastEventId = context.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } header ? header : lastEventIdQuery;
        long? after = null;
        if (lastEventId is { Length: > 0 })
        {
            if (!long.TryParse(lastEventId, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["Last-Event-ID"] = ["must be an event_id this stream sent"] });
            }

            after = parsed;
        }

        try
        {
            await ServerSentEventStream.WriteAsync(
                context.Response,
                events.SubscribeAsync(new EventFilter(types, device), after, cancellationToken),
                static e => new StringBuilder()
                    .Append("id: ").Append(e.EventId).Append('\n')
                    .Append("event: ").Append(e.EventType).Append('\n')
                    .Append("data: ").Append(e.ToJson().ToJsonString()).Append("\n\n")
                    .ToString(),
                timeProvider,
                cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (EventSubscriberLaggedException e)
        {
            // Ended so that it reconnects with Last-Event-ID and replays what it missed.
            LogLagged(logger, e.Message);
        }

        return TypedResults.Empty;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "An event stream client fell behind and was ended: {Reason}")]
    private static partial void LogLagged(ILogger logger, string reason);
}
