using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace Fieldline.WebConsole;

/// <summary>
/// The console's stylesheet and scripts, embedded in the assembly and served at <c>/console/{name}</c> with an ETag,
/// so that the one binary carries its console and nothing needs a front-end build or a web root on disk. Pages link
/// them through <see cref="Url"/>, which adds the content's tag: such a URL is cached for a year without
/// revalidation (a new build has new tags), so a page load does not ask again for every script.
/// </summary>
internal static class ConsoleAssets
{
    private static readonly FrozenDictionary<string, Asset> s_assets = Load();

    public static void MapConsoleAssets(this WebApplication app) =>
        app.MapGet("/console/{name}", (string name, string? v, HttpContext context) =>
        {
            if (!s_assets.TryGetValue(name, out var asset))
            {
                return Results.NotFound();
            }

            if (context.Request.Headers.IfNoneMatch.ToString() == asset.ETag)
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }

            context.Response.Headers.ETag = asset.ETag;

            // A URL with this content's tag never changes meaning; without it, revalidate so a new build is seen at once.
            context.Response.Headers.CacheControl = v == asset.Tag ? "public, max-age=31536000, immutable" : "no-cache";
            return Results.Bytes(asset.Content, asset.ContentType);
        }).ExcludeFromDescription();

    /// <summary>The address of asset <paramref name="name"/> with its content's tag, cached by browsers for a year.</summary>
    public static string Url(string name) =>
        s_assets.TryGetValue(name, out var asset) ? $"/console/{name}?v={asset.Tag}" : throw new ArgumentException($"No console asset is named '{name}'.", nameof(name));

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = Assembly.GetExecutingAssembly();
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("console/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var content = memory.ToArray();
            var name = resource["console/".Length..];
            var type = Path.GetExtension(name) switch
            {
                ".css" => "text/css; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".svg" => "image/svg+xml",
                ".txt" => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            };
            var tag = Convert.ToHexStringLower(SHA256.HashData(content))[..16];
            assets[name] = new Asset(content, type, tag, new EntityTagHeaderValue('"' + tag + '"').ToString());
        }

        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private sealed record Asset(byte[] Content, string ContentType, string Tag, string ETag);
}
