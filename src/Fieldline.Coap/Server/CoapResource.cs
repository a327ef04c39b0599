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

    /// <summary>The methods this resource serves; others get 4.05 naming these.</summary>
    public abstract IReadOnlyList<CoapCode> Methods { get; }

    /// <summary>Answers a request for one of <see cref="Methods"/>.</summary>
    public abstract ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken);

    internal bool Matches(IReadOnlyList<string> path)
    {
        if (path.Count != Segments.Count)
        {
            return false;
        }

        for (var i = 0; i < path.Count; i++)
        {
            var segment = Segments[i];
            if (!(segment.Length > 1 && segment[0] == '{' && segment[^1] == '}') && !string.Equals(segment, path[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }
}
