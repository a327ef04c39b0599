using System.Net.Sockets;
using Fieldline.Mqtt.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;
using MqttNetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Fieldline.Mqtt.Tests.Integration;

/// <summary>Mutated packets over real sockets: the broker closes what it must and keeps serving everyone else.</summary>
public class MutatedPacketTests
{
    private const int Connections = 300;
    private const int AtOnce = 16;

    [Fact]
    public async Task The_broker_survives_hundreds_of_mutated_packets_and_still_serves_a_fresh_client()
    {
        await using var broker = await TestBroker.StartAsync();
        var seeds = PacketMutator.Seeds;
        var random = new Random(0x5EED);
        var inputs = new List<byte[]>();
        for (var i = 0; i < Connections; i++)
        {
            var seed = seeds[random.Next(seeds.Count)];
            var mutated = PacketMutator.Mutate(random, seed.Packet, seeds[random.Next(seeds.Count)].Packet);

            // A mutated CONNECT opens the connection itself; any other packet follows a valid CONNECT of its level.
            inputs.Add(seed.Packet[0] >> 4 == 1 ? mutated : [.. Connect(seed.Level, $"fuzz-{i}"), .. mutated]);
        }

        for (var batch = 0; batch < inputs.Count; batch += AtOnce)
        {
            await Task.WhenAll(inputs.Skip(batch).Take(AtOnce).Select((bytes, i) => SendAndWaitForCloseAsync(broker.Port, bytes, batch + i)));
        }

        await Poll.UntilAsync(() => broker.Broker.ConnectedClients == 0, "every fuzzing connection closed", () => broker.Broker.ConnectedClients);

        foreach (var version in new[] { MqttNetVersion.V311, MqttNetVersion.V500 })
        {
            await using var fresh = await MqttNetClient.ConnectAsync(broker.Port, $"fresh-{version}", version);
            await fresh.SubscribeAsync("after/fuzzing", 1);
            await fresh.PublishAsync("after/fuzzing", "still here", qos: 1);
            await fresh.WaitForAsync(1, "its own message after the fuzzing");
            Assert.Equal("still here", Assert.Single(fresh.Messages).Payload);
        }

        var entries = broker.Logs.Entries;
        var warnings = entries.Where(e => e.Level >= LogLevel.Warning).ToList();
        Assert.True(warnings.Count == 0, "Expected no warnings or errors, got:\n" + string.Join("\n", warnings));

        // The mutations did reach the decoders: connections were closed for protocol errors (logged at Information).
        Assert.Contains(entries, e => e.EventId.Id == 3);
    }

    private static async Task SendAndWaitForCloseAsync(int port, byte[] bytes, int index)
    {
        await using var client = await RawMqttClient.ConnectAsync(port);
        try
        {
            await client.SendAsync(bytes);

            // End of stream after the packet: the broker must close whatever state the bytes left it in.
            client.ShutdownSend();
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            // The broker closed the connection before it had read everything: allowed.
        }

        try
        {
            await client.ReadUntilClosedAsync();
        }
        catch (Exception e) when (e is not IOException and not SocketException)
        {
            throw new InvalidOperationException($"Connection {index} ({Convert.ToHexString(bytes)}) was not closed.", e);
        }
    }
}
