namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>Waits for a condition instead of sleeping a fixed time.</summary>
public static class Poll
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails naming what was expected and what was seen.</summary>
    public static async Task UntilAsync(Func<bool> condition, string expected, Func<object?>? seen = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s waiting for: {expected}. Seen: {seen?.Invoke() ?? "(nothing recorded)"}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Awaits a task with a bounded timeout, failing with a description of what was awaited.</summary>
    public static async Task<T> WithTimeout<T>(Task<T> task, string what, TimeSpan? timeout = null)
    {
        var completed = await Task.WhenAny(task, Task.Delay(timeout ?? DefaultTimeout));
        if (completed != task)
        {
            Assert.Fail($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s waiting for: {what}");
        }

        return await task;
    }

    public static async Task WithTimeout(Task task, string what, TimeSpan? timeout = null)
    {
        var completed = await Task.WhenAny(task, Task.Delay(timeout ?? DefaultTimeout));
        if (completed != task)
        {
            Assert.Fail($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s waiting for: {what}");
        }

        await task;
    }
}
