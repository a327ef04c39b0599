namespace Fieldline.Hosting;

/// <summary>How to start a <see cref="FieldlineApplication"/>: the CLI fills it from flags, tests from a fixture.</summary>
internal sealed record FieldlineStartup
{
    /// <summary>Configuration keys (e.g. <c>Http:Port</c>) that override appsettings.json and the environment.</summary>
    public IReadOnlyDictionary<string, string?> ConfigurationOverrides { get; init; } = new Dictionary<string, string?>();

    /// <summary>Where the start-up banner (URLs and a newly generated admin key) is written; null for no banner.</summary>
    public TextWriter? Output { get; init; }

    /// <summary>Runs after Fieldline's own registrations and before the application is built: add or replace services, logging providers.</summary>
    public Action<WebApplicationBuilder>? ConfigureBuilder { get; init; }
}
