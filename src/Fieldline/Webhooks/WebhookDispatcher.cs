using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Fieldline.Core.Events;
using Fieldline.Core.Webhooks;
using Microsoft.AspNetCore.DataProtection;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Fieldline.Webhooks;

/// <summary>Retry and circuit-breaker settings of webhook delivery (section <c>Webhooks</c>).</summary>
internal sealed class WebhookOptions
{
    /// <summary>Attempts after the first failed one.</summary>
    public int MaximumRetries { get; set; } = 5;

    /// <summary>The first retry's delay; each later one doubles it, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long one POST may take.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an endpoint's circuit stays open after it failed too often.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>What a webhook's deliveries came to, for the API.</summary>
internal sealed class WebhookDeliveryStatus
{
    private long _delivered;
    private long _failed;
    private long _dropped;

    public long Delivered => Interlocked.Read(ref _delivered);

    public long Failed => Interlocked.Read(ref _failed);

    public long Dropped => Interlocked.Read(ref _dropped);

    public int? LastStatusCode { get; set; }

    public string? LastError { get; set; }

    public DateTimeOffset? LastAttemptAt { get; set; }

    public string CircuitState { get; set; } = "closed";

    public void CountDelivered() => Interlocked.Increment(ref _delivered);

    public void CountFailed() => Interlocked.Increment(ref _failed);

    public void CountDropped() => Interlocked.Increment(ref _dropped);
}

/// <summary>
/// Delivers events to the webhooks: one queue and one worker per webhook, so that a slow or dead receiver holds up
/// only itself. Each event is POSTed as the seed's Event JSON with <c>X-Fieldline-Signature: sha256=HEX</c>
/// (HMAC-SHA256 of the body under the webhook's secret), <c>X-Fieldline-Event</c> and <c>X-Fieldline-Event-Id</c>.
/// A failure (a 5xx, 408, 429, a timeout or a refused connection) is retried with exponential backoff and jitter
/// (Polly); a circuit breaker per webhook stops the attempts for a while when most recent ones failed. Events are
/// held in memory: those not yet delivered when the process stops are lost (the webhooks themselves are stored).
/// </summary>
internal sealed partial class WebhookDispatcher : BackgroundService
{
    private const int QueueCapacity = 10_000;
    private const string ProtectorPurpose = "Fieldline.Webhooks.Secret";

    private readonly EventBus _events;
    private readonly IWebhookStore _store;
    private readonly IDataProtector _protector;
    private readonly WebhookOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<WebhookDispatcher> _logger;
    private readonly HttpClient _http;
    private readonly Counter<long> _deliveries;
    private readonly ConcurrentDictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);
    private CancellationToken _stopping;

    public WebhookDispatcher(
        EventBus events,
        IWebhookStore store,
        IDataProtectionProvider dataProtection,
        Microsoft.Extensions.Options.IOptions<WebhookOptions> options,
        TimeProvider timeProvider,
        IMeterFactory meterFactory,
        ILogger<WebhookDispatcher> logger)
    {
        _events = events;
        _store = store;
        _protector = dataProtection.CreateProtector(ProtectorPurpose);
        _options = options.Value;
        _timeProvider = timeProvider;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };
        _deliveries = meterFactory.Create("Fieldline.Webhooks").CreateCounter<long>("fieldline.webhook.deliveries", description: "Webhook deliveries by outcome: delivered, failed (after all retries), dropped (queue full)");
    }

    /// <summary>Encrypts a secret for the store.</summary>
    public string Protect(string secret) => _protector.Protect(secret);

    public WebhookDeliveryStatus? StatusOf(string id) => _endpoints.TryGetValue(id, out var endpoint) ? endpoint.Status : null;

    /// <summary>Starts delivering to a webhook just created.</summary>
    public void Add(WebhookSubscription webhook) => Start(webhook);

    /// <summary>Stops delivering to a webhook just deleted; what was queued for it is dropped.</summary>
    public void Remove(string id)
    {
        if (_endpoints.TryRemove(id, out var endpoint))
        {
            endpoint.Queue.Writer.TryComplete();
            endpoint.Cancel.Cancel();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        foreach (var webhook in await _store.ListAsync(stoppingToken))
        {
            Start(webhook);
        }

        try
        {
            await foreach (var e in _events.SubscribeAsync(EventFilter.Everything, afterEventId: null, stoppingToken))
            {
                foreach (var endpoint in _endpoints.Values)
                {
                    if (endpoint.Matches(e) && !endpoint.Queue.Writer.TryWrite(e))
                    {
                        endpoint.Status.CountDropped();
                        _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "dropped"));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (EventSubscriberLaggedException e)
        {
            // The dispatcher only copies events into queues; falling behind means the process is starved.
            LogLagged(_logger, e);
        }
    }

    public override void Dispose()
    {
        foreach (var endpoint in _endpoints.Values)
        {
            endpoint.Cancel.Cancel();
        }

        _http.Dispose();
        base.Dispose();
    }

    private void Start(WebhookSubscription webhook)
    {
        var secret = Encoding.UTF8.GetBytes(_protector.Unprotect(webhook.ProtectedSecret));
        var status = new WebhookDeliveryStatus();
        var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = _options.MaximumRetries,
                Delay = _options.RetryBaseDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>().Handle<HttpRequestException>().Handle<TimeoutException>().Handle<BrokenCircuitException>().HandleResult(IsTransient),

                // A response that is retried is not returned: release its connection.
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                FailureRatio = 0.8,
                MinimumThroughput = 10,
                SamplingDuration = TimeSpan.FromSeconds(60),
                BreakDuration = _options.BreakDuration,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>().Handle<HttpRequestException>().Handle<TimeoutException>().HandleResult(IsTransient),
                OnOpened = _ => { status.CircuitState = "open"; return ValueTask.CompletedTask; },
                OnHalfOpened = _ => { status.CircuitState = "half_open"; return ValueTask.CompletedTask; },
                OnClosed = _ => { status.CircuitState = "closed"; return ValueTask.CompletedTask; },
            })
            .AddTimeout(_options.RequestTimeout)
            .Build();
        var endpoint = new Endpoint(webhook, secret, status, pipeline, Channel.CreateBounded<PlatformEvent>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite }), CancellationTokenSource.CreateLinkedTokenSource(_stopping));
        if (_endpoints.TryAdd(webhook.Id, endpoint))
        {
            _ = RunAsync(endpoint);
        }
    }

    private async Task RunAsync(Endpoint endpoint)
    {
        var cancel = endpoint.Cancel.Token;
        try
        {
            await foreach (var e in endpoint.Queue.Reader.ReadAllAsync(cancel))
            {
                await DeliverAsync(endpoint, e, cancel);
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(Endpoint endpoint, PlatformEvent e, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes(e.ToJson().ToJsonString());
        var signature = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(endpoint.Secret, body));
        try
        {
            using var response = await endpoint.Pipeline.ExecuteAsync(
                async token =>
                {
                    endpoint.Status.LastAttemptAt = _timeProvider.GetUtcNow();
                    using var request = new HttpRequestMessage(HttpMethod.Post, endpoint.Webhook.Url) { Content = new ByteArrayContent(body) };
                    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    request.Headers.Add("X-Fieldline-Event", e.EventType);
                    request.Headers.Add("X-Fieldline-Event-Id", e.EventId);
                    request.Headers.Add("X-Fieldline-Signature", signature);
                    request.Headers.Add("X-Fieldline-Webhook", endpoint.Webhook.Id);
                    var response = await _http.SendAsync(request, token);
                    endpoint.Status.LastStatusCode = (int)response.StatusCode;
                    return response;
                },
                cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                endpoint.Status.CountDelivered();
                _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "delivered"));
                return;
            }

            Fail(endpoint, e, $"HTTP {((int)response.StatusCode).ToString(CultureInfo.InvariantCulture)}");
        }
        catch (Exception ex) when (ex is HttpRequestException or TimeoutException or BrokenCircuitException or Polly.Timeout.TimeoutRejectedException)
        {
            Fail(endpoint, e, ex.Message);
        }
    }

    private void Fail(Endpoint endpoint, PlatformEvent e, string error)
    {
        endpoint.Status.CountFailed();
        endpoint.Status.LastError = error;
        _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
        LogDeliveryFailed(_logger, e.EventId, endpoint.Webhook.Id, error);
    }

    private static bool IsTransient(HttpResponseMessage response) =>
        (int)response.StatusCode >= 500 || response.StatusCode is System.Net.HttpStatusCode.RequestTimeout or System.Net.HttpStatusCode.TooManyRequests;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event {EventId} could not be delivered to webhook {WebhookId}: {Error}")]
    private static partial void LogDeliveryFailed(ILogger logger, string eventId, string webhookId, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "The webhook dispatcher fell behind the event bus and stopped")]
    private static partial void LogLagged(ILogger logger, Exception exception);

    private sealed record Endpoint(
        WebhookSubscription Webhook,
        byte[] Secret,
        WebhookDeliveryStatus Status,
        ResiliencePipeline<HttpResponseMessage> Pipeline,
        Channel<PlatformEvent> Queue,
        CancellationTokenSource Cancel)
    {
        public bool Matches(PlatformEvent e) =>
            (Webhook.EventTypes.Count == 0 || Webhook.EventTypes.Contains(e.EventType)) && (Webhook.DeviceId is null || Webhook.DeviceId == e.DeviceId);
    }
}
