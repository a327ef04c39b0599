using Fieldline.Mqtt.Protocol;
using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Protocol;

/// <summary>Whatever bytes arrive, the decoders throw <see cref="MqttProtocolException"/> and nothing else.</summary>
public class DecoderRobustnessTests
{
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V500 = MqttProtocolVersion.V500;

    /// <summary>A valid body of each packet type, with the decoder that reads it.</summary>
    public static TheoryData<string> Kinds => [.. Samples.Keys];

    private static readonly Dictionary<string, (byte Flags, byte[] Body, Action<byte, byte[]> Decode)> Samples = new()
    {
        ["connect 3.1.1"] = (0, ConnectBody(4, "c1", username: "u", password: [1], willTopic: "w", willPayload: [2], willQos: 1), (f, b) => MqttConnectPacket.Decode(f, b, out _)),
        ["connect 5.0"] = (0, ConnectBody(5, "c1", properties: Props([0x11, 0, 0, 0, 5], [0x21, 0, 5], [0x27, 0, 0, 1, 0], [0x26, .. Str("k"), .. Str("v")]), username: "u", password: [1], willTopic: "w", willPayload: [2], willProperties: Props([0x18, 0, 0, 0, 1], [0x01, 1], [0x09, .. Bin([1, 2])])), (f, b) => MqttConnectPacket.Decode(f, b, out _)),
        ["publish 3.1.1"] = (0x02, Concat(Str("a/b"), U16(1), [1, 2, 3]), (f, b) => MqttPacketDecoder.DecodePublish(f, b, V311)),
        ["publish 5.0"] = (0x0B, Concat(Str("a/b"), U16(1), Props([0x01, 1], [0x02, 0, 0, 0, 9], [0x08, .. Str("r/t")], [0x09, .. Bin([1])], [0x26, .. Str("k"), .. Str("v")], [0x03, .. Str("ct")]), [1, 2, 3]), (f, b) => MqttPacketDecoder.DecodePublish(f, b, V500)),
        ["subscribe 3.1.1"] = (0x02, Concat(U16(1), Str("a/+"), [1], Str("#"), [0]), (f, b) => MqttPacketDecoder.DecodeSubscribe(f, b, V311)),
        ["subscribe 5.0"] = (0x02, Concat(U16(1), Props([0x0B, 0x81, 0x01], [0x26, .. Str("k"), .. Str("v")]), Str("a/+"), [0x2D], Str("#"), [0]), (f, b) => MqttPacketDecoder.DecodeSubscribe(f, b, V500)),
        ["unsubscribe 3.1.1"] = (0x02, Concat(U16(1), Str("a/+"), Str("#")), (f, b) => MqttPacketDecoder.DecodeUnsubscribe(f, b, V311)),
        ["unsubscribe 5.0"] = (0x02, Concat(U16(1), Props([0x26, .. Str("k"), .. Str("v")]), Str("a/+")), (f, b) => MqttPacketDecoder.DecodeUnsubscribe(f, b, V500)),
        ["puback 5.0"] = (0, Concat(U16(1), [0x10], Props([0x1F, .. Str("r")])), (f, b) => MqttPacketDecoder.DecodeAck(f, 0, b, V500, out _)),
        ["pubrel 5.0"] = (2, Concat(U16(1), [0x00], Props([0x26, .. Str("k"), .. Str("v")])), (f, b) => MqttPacketDecoder.DecodeAck(f, 2, b, V500, out _)),
        ["disconnect 5.0"] = (0, Concat([0x04], Props([0x11, 0, 0, 0, 1], [0x1F, .. Str("bye")])), (f, b) => MqttPacketDecoder.DecodeDisconnect(f, b, V500, out _)),
    };

    private static readonly Dictionary<string, int> ValidPrefixes = new()
    {
        ["subscribe 3.1.1"] = 8,
        ["subscribe 5.0"] = 19,
        ["unsubscribe 3.1.1"] = 7,
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_truncation_of_a_valid_body_throws_a_protocol_exception_and_nothing_else(string kind)
    {
        var (flags, body, decode) = Samples[kind];
        decode(flags, body);
        for (var length = 0; length < body.Length; length++)
        {
            var prefix = body[..length];
            var ex = Record.Exception(() => decode(flags, prefix));
            if (kind.StartsWith("disconnect", StringComparison.Ordinal) && length <= 1)
            {
                // An empty DISCONNECT and one with only a reason code are both valid.
                Assert.Null(ex);
                continue;
            }

            if (kind.StartsWith("pub", StringComparison.Ordinal) && kind.EndsWith("5.0", StringComparison.Ordinal) && !kind.StartsWith("publish", StringComparison.Ordinal) && length is 2 or 3)
            {
                // An acknowledgement may stop after the packet id, or after the reason code.
                Assert.Null(ex);
                continue;
            }

            if (ValidPrefixes.TryGetValue(kind, out var valid) && length == valid)
            {
                // Cut right after the first of two topic filters: a valid packet with one filter.
                Assert.Null(ex);
                continue;
            }

            if (kind.StartsWith("publish", StringComparison.Ordinal) && ex is null)
            {
                // A PUBLISH cut inside its payload is still a valid, shorter PUBLISH.
                continue;
            }

            Assert.True(ex is MqttProtocolException, $"{kind}: prefix {length}/{body.Length} ({Hex(prefix)}) gave {ex?.GetType().FullName ?? "no exception"}: {ex?.Message}");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Randomly_mutated_packets_throw_only_protocol_exceptions(string kind)
    {
        var (flags, body, decode) = Samples[kind];
        var random = new Random(20240601 + kind.Length);
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = Mutate(random, body);
            var mutatedFlags = random.Next(8) == 0 ? (byte)random.Next(16) : flags;
            var ex = Record.Exception(() => decode(mutatedFlags, mutated));
            Assert.True(ex is null or MqttProtocolException, $"{kind}: mutation {i} (flags {mutatedFlags:X}, {Hex(mutated)}) gave {ex?.GetType().FullName}: {ex}");
        }
    }

    private static byte[] Mutate(Random random, byte[] body)
    {
        var bytes = new List<byte>(body);
        var mutations = 1 + random.Next(4);
        for (var m = 0; m < mutations; m++)
        {
            switch (random.Next(6))
            {
                case 0 when bytes.Count > 0:
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                    break;
                case 1 when bytes.Count > 0:
                    bytes[random.Next(bytes.Count)] ^= (byte)(1 << random.Next(8));
                    break;
                case 2:
                    bytes.Insert(random.Next(bytes.Count + 1), (byte)random.Next(256));
                    break;
                case 3 when bytes.Count > 0:
                    bytes.RemoveAt(random.Next(bytes.Count));
                    break;
                case 4 when bytes.Count > 0:
                    bytes.RemoveRange(random.Next(bytes.Count), 0);
                    bytes.RemoveRange(random.Next(bytes.Count), bytes.Count - random.Next(bytes.Count) > 0 ? 1 : 0);
                    break;
                case 5 when bytes.Count > 1:
                    // Interesting values where lengths and ids live.
                    bytes[random.Next(bytes.Count)] = random.Next(4) switch { 0 => 0x00, 1 => 0xFF, 2 => 0x80, _ => 0x7F };
                    break;
            }
        }

        return [.. bytes];
    }
}
