using System.Text.Json.Nodes;
using Fieldline.Core.Devices;
using Fieldline.Core.Shadows;
using Fieldline.Tests.Infrastructure;

namespace Fieldline.Tests.Shadows;

/// <summary>
/// Two shadow services over one store, as two instances over one database: what one remembers of its own last write
/// never hides the other's.
/// </summary>
public sealed class ShadowInstancesTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task An_update_after_another_instance_wrote_applies_to_the_stored_shadow_and_a_version_check_uses_the_stored_version()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("twin-1");
        var first = env.GetService<ShadowService>();
        var second = new ShadowService(env.GetService<IShadowStore>(), env.GetService<IDeviceRegistry>(), TimeProvider.System);

        Assert.Equal(ShadowStatus.Ok, (await first.UpdateAsync("twin-1", Reported("""{"a":1}"""), ShadowWriter.Device, null, None)).Status);
        Assert.Equal(ShadowStatus.Ok, (await second.UpdateAsync("twin-1", Reported("""{"b":2}"""), ShadowWriter.Device, null, None)).Status);
        var merged = await first.UpdateAsync("twin-1", Reported("""{"c":3}"""), ShadowWriter.Device, null, None);
        await second.UpdateAsync("twin-1", Reported("""{"d":4}"""), ShadowWriter.Device, null, None);
        var checkedVersion = await first.UpdateAsync("twin-1", Reported("""{"e":5}"""), ShadowWriter.Device, expectedVersion: 4, None);
        var stale = await first.UpdateAsync("twin-1", Reported("""{"f":6}"""), ShadowWriter.Device, expectedVersion: 4, None);

        Assert.Equal(ShadowStatus.Ok, merged.Status);
        Assert.Equal(3, merged.Shadow!.Version);
        Assert.Equal("""{"a":1,"b":2,"c":3}""", merged.Shadow.Reported.ToJsonString());
        Assert.Equal(ShadowStatus.Ok, checkedVersion.Status);
        Assert.Equal(5, checkedVersion.Shadow!.Version);
        Assert.Equal(ShadowStatus.VersionConflict, stale.Status);
        Assert.Equal(5, stale.Shadow!.Version);
    }

    [Fact]
    public async Task A_device_registered_again_under_the_same_id_starts_from_an_empty_shadow()
    {
        await using var env = await TestEnvironment.StartAsync();
        await env.RegisterAsync("reborn-1");
        var shadows = env.GetService<ShadowService>();
        await shadows.UpdateAsync("reborn-1", Reported("""{"old":true}"""), ShadowWriter.Device, null, None);

        using (var deleted = await env.Client.DeleteAsync("/api/v1/devices/reborn-1"))
        {
            deleted.EnsureSuccessStatusCode();
        }

        var gone = await shadows.UpdateAsync("reborn-1", Reported("""{"ghost":true}"""), ShadowWriter.Device, null, None);
        await env.RegisterAsync("reborn-1");
        var fresh = await shadows.UpdateAsync("reborn-1", Reported("""{"new":true}"""), ShadowWriter.Device, null, None);

        Assert.Equal(ShadowStatus.DeviceNotFound, gone.Status);
        Assert.Equal(1, fresh.Shadow!.Version);
        Assert.Equal("""{"new":true}""", fresh.Shadow.Reported.ToJsonString());
    }

    private static ShadowUpdate Reported(string json) => new(null, JsonNode.Parse(json)!.AsObject());
}
