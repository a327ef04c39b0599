using System.Globalization;
using System.Text;
using Fieldline.Coap.Protocol;

namespace Fieldline.Coap.Server;

/// <summary>
/// <c>/.well-known/core</c> (RFC 6690): the server's resources in CoRE link format (content format 40), with their
/// rt, if, ct and obs attributes. Query filters select by attribute (<c>?rt=temperature-c</c>, <c>?href=/sensors*</c>);
/// a value ending in <c>*</c> matches as a prefix (§4.1).
/// </summary>
internal sealed class WellKnownCoreResource(IReadOnlyList<CoapResource> resources) : CoapResource("/.well-known/core")
{
    public override CoapLinkAttributes? Link => null;

    public override IReadOnlyList<CoapCode> Methods { get; } = [CoapCode.Get];

    public override ValueTask<CoapResponse> HandleAsync(CoapRequest request, CancellationToken cancellationToken)
    {
        var links = new StringBuilder();
        foreach (var resource in resources)
        {
            if (resource.Link is not { } link || resource.HasPlaceholders)
            {
                continue;
            }

            var href = "/" + string.Join('/', resource.Segments);
            if (!request.Query.All(filter => Matches(filter, href, link)))
            {
                continue;
            }

            if (links.Length > 0)
            {
                links.Append(',');
            }

            links.Append('<').Append(href).Append('>');
            if (link.ResourceType is { } rt)
            {
                links.Append(";rt=\"").Append(rt).Append('"');
            }

            if (link.Interface is { } @if)
            {
                links.Append(";if=\"").Append(@if).Append('"');
            }

            if (link.ContentFormat is { } ct)
            {
                links.Append(CultureInfo.InvariantCulture, $";ct={ct}");
            }

            if (link.Observable)
            {
                links.Append(";obs");
            }
        }

        return ValueTask.FromResult(new CoapResponse(CoapCode.Content, CoapContentFormat.LinkFormat, Encoding.UTF8.GetBytes(links.ToString())));
    }

    private static bool Matches(string filter, string href, CoapLinkAttributes link)
    {
        var equals = filter.IndexOf('=', StringComparison.Ordinal);
        if (equals < 0)
        {
            return true;
        }

        var value = filter[(equals + 1)..];
        string? actual = filter[..equals] switch
        {
            "href" => href,
            "rt" => link.ResourceType,
            "if" => link.Interface,
            "ct" => link.ContentFormat?.ToString(CultureInfo.InvariantCulture),
            _ => null,
        };
        if (actual is null)
        {
            return false;
        }

        // rt and if may hold several space-separated values; any of them may match.
        foreach (var candidate in filter[..equals] is "rt" or "if" ? actual.Split(' ') : [actual])
        {
            if (value.EndsWith('*') ? candidate.StartsWith(value[..^1], StringComparison.Ordinal) : candidate == value)
            {
                return true;
            }
        }

        return false;
    }
}
