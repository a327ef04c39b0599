using System.Collections.Concurrent;

namespace Fieldline.Core.Security;

/// <summary>
/// Counts failed authentication attempts per key (a device id, a source address) in fixed windows and says when a
/// key has used up its allowance. A blocked key is refused before its secret is even checked, so guessing costs
/// the attacker a window per few tries, whatever the secret's strength.
/// </summary>
public sealed class FailedAttemptLimiter
{
    private readonly ConcurrentDictionary<string, Window> _windows = new(StringComparer.Ordinal);
    private readonly TimeProvider _timeProvider;
    private readonly int _maxFailures;
    private readonly TimeSpan _window;
    private readonly int _maxKeys;

    /// <summary>Creates a limiter allowing <paramref name="maxFailures"/> failures per key per <paramref name="window"/>.</summary>
    public FailedAttemptLimiter(int maxFailures, TimeSpan window, TimeProvider timeProvider, int maxKeys = 100_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFailures, 1);
        _maxFailures = maxFailures;
        _window = window;
        _timeProvider = timeProvider;
        _maxKeys = maxKeys;
    }

    /// <summary>Whether the key has failed too often in the current window.</summary>
    public bool IsBlocked(string key)
    {
        if (!_windows.TryGetValue(key, out var window))
        {
            return false;
        }

        lock (window)
        {
            return !IsExpired(window) && window.Failures >= _maxFailures;
        }
    }

    /// <summary>Records a failure of the key.</summary>
    public void RecordFailure(string key)
    {
        if (_windows.Count >= _maxKeys)
        {
            Prune();
        }

        var window = _windows.GetOrAdd(key, _ => new Window { StartTimestamp = _timeProvider.GetTimestamp() });
        lock (window)
        {
            if (IsExpired(window))
            {
                window.StartTimestamp = _timeProvider.GetTimestamp();
                window.Failures = 0;
            }

            window.Failures++;
        }
    }

    /// <summary>Forgets the key's failures (after a success).</summary>
    public void Reset(string key) => _windows.TryRemove(key, out _);

    private bool IsExpired(Window window) => _timeProvider.GetElapsedTime(window.StartTimestamp) >= _window;

    private void Prune()
    {
        foreach (var (key, window) in _windows)
        {
            if (IsExpired(window))
            {
                _windows.TryRemove(key, out _);
            }
        }
    }

    private sealed class Window
    {
        public long StartTimestamp { get; set; }

        public int Failures { get; set; }
    }
}
