using Xunit.Sdk;

namespace Fieldline.Tests.Infrastructure;

/// <summary>Bounded polling instead of fixed sleeps: waits until a condition holds, or fails saying what it last saw.</summary>
internal static class Poll
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string expectation, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        var delay = 10;
        while (true)
        {
            var seen = await probe();
            if (done(seen))
            {
                return seen;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new XunitException($"Expected {expectation}, but saw {Describe(seen)}.");
            }

            await Task.Delay(delay);
            delay = Math.Min(delay * 2, 200);
        }
    }

    private static string Describe<T>(T value) => value switch
    {
        null => "null",
        System.Collections.IEnumerable sequence and not string => "[" + string.Join(", ", sequence.Cast<object?>()) + "]",
        _ => value.ToString() ?? "",
    };
}
