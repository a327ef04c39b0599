using Fieldline.Coap.Protocol;

namespace Fieldline.Coap.Server;

/// <summary>
/// A resource at a path: which methods it serves and how. Path segments may be <c>{name}</c> placeholders, which
/// match any one segment (the device API puts the access token there).
/// </summary>
public abstract class CoapResource
{
    protected CoapResource(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>The path's segments.</summary>
    public IReadOnlyList<string> Segments { get; }

    /// <summary>The path as declared, placeholders and all (what logs name: never a request's path, which may hold a credential).</summary>
    public string Template => "/" + string.Join('/', Segments);

    /// <summary>
    /// Most observations of one path (one device's, when the path names it); a new one beyond it ends the oldest.
    /// A device that restarts or changes address registers again, and its old observations would otherwise stay
    /// until a Confirmable notification to them failed.
    /// </summary>
    public virtual int MaximumObserversPerPath => int.MaxValue;

    /// <summary>What <c>/.well-known/core</c> says of this resource (RFC 6690); null leaves it out of the listing.</summary>
    public virtual CoapLinkAttributes? Link => new();

    /// <summary>The methods this resource serves; others get 4.05 naming these.</summary>
    public abstract IReadOnlyList<CoapCode> Methods { get; }

    /// <summary>
    /// The content formats this resource takes in a request payload; a request naming another in Content-Format gets
    /// 4.15 Unsupported Content-Format. Null takes any; a request without Content-Format is left to the resource.
    /// </summary>
    public virtual IReadOnlyList<int>? AcceptedContentFormats => null;

    /// <summary>
    /// Whether every notification of this resource is Confirmable, for state that must reach the observer (commands),
    /// rather than one at least every <see cref="CoapServerOptions.ObserveConfirmableInterval"/>.
    /// </summary>
    public virtual bool ConfirmableNotifications => false;

    /// <summary>
    /// Raised by <see cref="NotifyObservers()"/> (with a null path: every observer) and
    /// <see cref="NotifyObservers(string)"/>; the server answers those observers' GET again (RFC 7641).
    /// </summary>
    internal event Action<CoapResource, string?>? Changed;

    /// <summary>Answers a request for one of <see cref="Methods"/>.</summary>
    public abstract ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Tells the observers of this resource (GET with Observe 0, when <see cref="CoapLinkAttributes.Observable"/>) that
    /// its state changed: each gets a notification with a fresh answer to its request.
    /// </summary>
    protected void NotifyObservers() => Changed?.Invoke(this, null);

    /// <summary>
    /// Tells the observers that requested <paramref name="path"/> (its segments joined by <c>/</c>, as
    /// <see cref="CoapRequest.PathText"/>) that it changed. A resource with placeholders serves many paths (one per
    /// device); this notifies the observers of one of them without touching the others.
    /// </summary>
    protected void NotifyObservers(string path) => Changed?.Invoke(this, path);

    /// <summary>
    /// Called when a client starts observing this resource (its GET with Observe 0 succeeded). The request, with its
    /// <see cref="CoapRequest.State"/>, is the one each notification answers again.
    /// </summary>
    protected virtual void OnObserveStarted(CoapRequest request)
    {
    }

    /// <summary>
    /// Called when an observation ends: deregistered, reset by the client, not acknowledged, replaced by a new
    /// registration with the same token, or ended by an error answer.
    /// </summary>
    protected virtual void OnObserveEnded(CoapRequest request)
    {
    }

    internal void ObserveStarted(CoapRequest request) => OnObserveStarted(request);

    internal void ObserveEnded(CoapRequest request) => OnObserveEnded(request);

    /// <summary>Whether the path has <c>{name}</c> segments (such a resource cannot be listed: it has no one path).</summary>
    internal bool HasPlaceholders => Segments.Any(IsPlaceholder);

    internal bool Matches(IReadOnlyList<string> path)
    {
        if (path.Count != Segments.Count)
        {
            return false;
        }

        for (var i = 0; i < path.Count; i++)
        {
            var segment = Segments[i];
            if (!IsPlaceholder(segment) && !string.Equals(segment, path[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsPlaceholder(string segment) => segment.Length > 1 && segment[0] == '{' && segment[^1] == '}';
}

/// <summary>The target attributes of a resource's link (RFC 6690 §3, RFC 7641 §6 for <c>obs</c>).</summary>
/// <param name="ResourceType">rt: what the resource is, e.g. <c>temperature-c</c>.</param>
/// <param name="Interface">if: how to interact with it, e.g. <c>sensor</c>.</param>
/// <param name="ContentFormat">ct: the content format it answers with.</param>
/// <param name="Observable">obs: whether it can be observed.</param>
public sealed record CoapLinkAttributes(string? ResourceType = null, string? Interface = null, int? ContentFormat = null, bool Observable = false);
