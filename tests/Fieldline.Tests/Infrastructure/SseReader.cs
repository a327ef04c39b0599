using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Fieldline.Tests.Infrastructure;

/// <summary>One Server-Sent Event: its id (null when it has none), type and JSON data.</summary>
internal sealed record SseEvent(string? Id, string Type, JsonObject Data);

/// <summary>Reads an SSE response line by line.</summary>
internal sealed class SseReader : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseReader(HttpResponseMessage response, StreamReader reader)
    {
        _response = response;
        _reader = reader;
    }

    public static async Task<SseReader> OpenAsync(TestEnvironment env, string path, string? lastEventId, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        }

        var response = await env.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken), Encoding.UTF8);

        // The server's first comment: the subscription is in place once it arrives.
        Assert.Equal(": connected", await reader.ReadLineAsync(cancellationToken));
        return new SseReader(response, reader);
    }

    public async Task<List<SseEvent>> ReadAsync(int count, CancellationToken cancellationToken)
    {
        var events = new List<SseEvent>();
        string? id = null, type = null, data = null;
        while (events.Count < count)
        {
            var line = await _reader.ReadLineAsync(cancellationToken) ?? throw new Xunit.Sdk.XunitException($"the stream ended after {events.Count} of {count} events");
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    events.Add(new SseEvent(id, type!, JsonNode.Parse(data)!.AsObject()));
                }

                (id, type, data) = (null, null, null);
            }
            else if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = line[4..];
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
        }

        return events;
    }

    /// <summary>Reads until the server ends the stream; false when the response failed instead.</summary>
    public async Task<bool> ReadToEndAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await _reader.ReadLineAsync(cancellationToken) is not null)
            {
            }

            return true;
        }
        catch (IOException)
        {
            return false; // the connection was aborted rather than ended
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}
