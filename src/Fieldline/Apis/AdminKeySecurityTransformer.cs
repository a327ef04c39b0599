using Fieldline.Security;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Fieldline.Apis;

/// <summary>Documents the admin key (bearer or X-Api-Key) on every /api operation of the OpenAPI document.</summary>
internal sealed class AdminKeySecurityTransformer : IOpenApiDocumentTransformer
{
    private const string BearerScheme = "AdminKeyBearer";
    private const string HeaderScheme = "AdminKeyHeader";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(document);
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "The admin API key as a bearer token.",
        };
        document.Components.SecuritySchemes[HeaderScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = AdminKeyAuthentication.ApiKeyHeader,
            Description = "The admin API key in a header.",
        };

        foreach (var (path, item) in document.Paths)
        {
            if (!path.StartsWith("/api/", StringComparison.Ordinal) || item.Operations is null)
            {
                continue;
            }

            foreach (var operation in item.Operations.Values)
            {
                // Either scheme suffices: two alternative requirements.
                operation.Security =
                [
                    new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] },
                    new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(HeaderScheme, document)] = [] },
                ];
            }
        }

        return Task.CompletedTask;
    }
}
