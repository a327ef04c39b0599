namespace Fieldline.Hosting;

/// <summary>
/// One condition for /ready. Register implementations as <c>IReadinessCheck</c> singletons; /ready answers
/// 200 only when every registered check is ready (the store is open, the broker listens, ...).
/// </summary>
internal interface IReadinessCheck
{
    /// <summary>Shown in the /ready body.</summary>
    string Name { get; }

    bool IsReady { get; }
}
