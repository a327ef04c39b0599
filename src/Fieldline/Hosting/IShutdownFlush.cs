namespace Fieldline.Hosting;

/// <summary>
/// Work that must reach the store before the process exits (the telemetry pipeline's buffered points).
/// Every registered instance is awaited by <see cref="StorageLifetime"/> on stop: after the listeners have
/// stopped accepting data and before the stores are disposed.
/// </summary>
internal interface IShutdownFlush
{
    Task FlushAsync(CancellationToken cancellationToken);
}
