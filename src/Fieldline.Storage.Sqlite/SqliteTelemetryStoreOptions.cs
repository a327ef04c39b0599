namespace Fieldline.Storage.Sqlite;

/// <summary>Tuning of <see cref="SqliteTelemetryStore"/>.</summary>
public sealed class SqliteTelemetryStoreOptions
{
    /// <summary>A series head is sealed into a compressed chunk when it holds this many points.</summary>
    public int MaxHeadPoints { get; set; } = 240;

    /// <summary>A head is also sealed once its oldest point arrived this long ago, so that the log stays short.</summary>
    public TimeSpan MaxHeadAge { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often the background compactor looks for old heads; zero disables the background loop.</summary>
    public TimeSpan CompactionInterval { get; set; } = TimeSpan.FromMinutes(1);
}
