namespace Fieldline.Core.Shadows;

/// <summary>
/// How big a shadow may grow. An update that would take it past a limit is refused whole; nothing of it is applied.
/// The defaults follow AWS IoT's: an 8 KB state document and a nesting depth of 6 within desired or reported.
/// </summary>
public sealed class ShadowLimits
{
    /// <summary>Most bytes of the state (desired and reported, as compact JSON).</summary>
    public int MaximumStateBytes { get; init; } = 8 * 1024;

    /// <summary>Deepest nesting of objects and arrays within desired or within reported.</summary>
    public int MaximumDepth { get; init; } = 6;

    /// <summary>Most object keys in desired and reported together, at all depths.</summary>
    public int MaximumKeys { get; init; } = 500;

    /// <summary>
    /// How many shadows this process keeps as it last wrote them, so that a device's next update need not read its
    /// shadow back from the store (at most <see cref="MaximumStateBytes"/> and metadata each; 0 turns it off).
    /// </summary>
    public int RememberedShadows { get; init; } = 10_000;
}
