using Fieldline.Mqtt.Server;
using Microsoft.Extensions.Options;

namespace Fieldline.Hosting;

/// <summary>Where configuration comes from and how it becomes a validated <see cref="FieldlineOptions"/>.</summary>
internal static class FieldlineConfiguration
{
    /// <summary>The environment variable prefix: <c>FIELDLINE__Http__Port</c> sets <c>Http:Port</c>.</summary>
    public const string EnvironmentPrefix = "FIELDLINE__";

    /// <summary>
    /// Adds the sources in increasing precedence: appsettings.json next to the executable, the
    /// <c>FIELDLINE__</c> environment variables, then <paramref name="overrides"/> (the command-line flags).
    /// </summary>
    public static IConfigurationBuilder AddFieldlineSources(
        this IConfigurationBuilder builder, string baseDirectory, IEnumerable<KeyValuePair<string, string?>> overrides)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder
            .AddJsonFile(Path.Combine(baseDirectory, "appsettings.json"), optional: true, reloadOnChange: false)
            .AddEnvironmentVariables(EnvironmentPrefix)
            .AddInMemoryCollection(overrides);
    }

    /// <summary>Binds and validates; throws <see cref="OptionsValidationException"/> with one line per problem.</summary>
    public static FieldlineOptions BindAndValidate(IConfiguration configuration)
    {
        var options = new FieldlineOptions();
        var broker = new MqttBrokerOptions();
        try
        {
            configuration.Bind(options);
            configuration.GetSection("Mqtt").Bind(broker);
        }
        catch (InvalidOperationException e)
        {
            // The binder reports e.g. "Failed to convert configuration value at 'Http:Port' to type 'System.Int32'."
            throw new OptionsValidationException(Options.DefaultName, typeof(FieldlineOptions), [e.Message]);
        }

        var result = new FieldlineOptionsValidator().Validate(Options.DefaultName, options);
        var failures = (result.Failed ? result.Failures : []).Concat(FieldlineOptionsValidator.ValidateBroker(broker)).ToList();
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(FieldlineOptions), failures);
        }

        return options;
    }
}
