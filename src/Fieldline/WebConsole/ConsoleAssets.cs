using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace Fieldline.WebConsole;

/// <summary>
/// The console's stylesheet and scripts, embedded in the assembly and served at <c>/console/{name}</c> with an ETag,
/// so that the one binary carries its console and nothing needs a front-end build or a web root on disk.
/// </summary>
internal static class ConsoleAssets
{
    private static readonly FrozenDictionary<string, Asset> s_assets = Load();

    public static void MapConsoleAssets(this WebApplication app) =>
        app.MapGet("/console/{name}", (string name, HttpContext context) =>
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
            context.Response.Headers.CacheControl = "no-cache"; // revalidated with the ETag: a new build is seen at once
            return Results.Bytes(asset.Content, asset.ContentType);
        }).ExcludeFromDescription();

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
            assets[name] = new Asset(content, type, new EntityTagHeaderValue('"' + tag + '"').ToString());
        }

        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private sealed record Asset(byte[] Content, string ContentType, string ETag);
}
