using Fieldline.Core.Security;
using Microsoft.Extensions.Time.Testing;

namespace Fieldline.Core.Tests.Security;

public sealed class FailedAttemptLimiterTests
{
    [Fact]
    public void A_key_is_blocked_after_its_allowance_of_failures_until_the_window_passes()
    {
        var time = new FakeTimeProvider();
        var limiter = new FailedAttemptLimiter(maxFailures: 3, TimeSpan.FromMinutes(1), time);

        limiter.RecordFailure("dev-1");
        limiter.RecordFailure("dev-1");
        Assert.False(limiter.IsBlocked("dev-1"), "two failures of three allowed must not block");
        limiter.RecordFailure("dev-1");
        Assert.True(limiter.IsBlocked("dev-1"), "the third failure must block");
        Assert.False(limiter.IsBlocked("dev-2"), "another key is not affected");

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.True(limiter.IsBlocked("dev-1"), "still blocked within the window");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(limiter.IsBlocked("dev-1"), "unblocked once the window has passed");
    }

    [Fact]
    public void A_success_resets_the_failures_of_a_key()
    {
        var limiter = new FailedAttemptLimiter(maxFailures: 2, TimeSpan.FromMinutes(1), new FakeTimeProvider());
        limiter.RecordFailure("dev-1");
        limiter.Reset("dev-1");
        limiter.RecordFailure("dev-1");

        Assert.False(limiter.IsBlocked("dev-1"));
    }

    [Fact]
    public void The_number_of_remembered_keys_stays_bounded()
    {
        var time = new FakeTimeProvider();
        var limiter = new FailedAttemptLimiter(maxFailures: 1, TimeSpan.FromMinutes(1), time, maxKeys: 100);
        for (var i = 0; i < 100; i++)
        {
            limiter.RecordFailure($"source-{i}");
        }

        time.Advance(TimeSpan.FromMinutes(2));
        limiter.RecordFailure("source-new");

        Assert.True(limiter.IsBlocked("source-new"));
        Assert.False(limiter.IsBlocked("source-0"), "expired windows are pruned when the limit is reached");
    }
}
