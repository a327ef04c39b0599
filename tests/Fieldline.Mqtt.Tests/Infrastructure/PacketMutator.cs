using static Fieldline.Mqtt.Tests.Infrastructure.Bytes;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>A valid whole packet (fixed header included) and the protocol level it belongs to.</summary>
public sealed record SeedPacket(string Name, int Level, byte[] Packet)
{
    public override string ToString() => Name;
}

/// <summary>
/// Valid packets of every type a server receives, for 3.1.1 and 5.0, and seeded mutations of them: byte and bit
/// changes, boundary values, insertions, deletions, truncation, extension, splices of two packets, and a
/// remaining length that is either recomputed (so that the mutation reaches the decoder) or left as it came.
/// </summary>
public static class PacketMutator
{
    public static IReadOnlyList<SeedPacket> Seeds { get; } = BuildSeeds();

    private static List<SeedPacket> BuildSeeds()
    {
        byte[] userProperty = [0x26, .. Str("k"), .. Str("v")];
        var seeds = new List<SeedPacket>();
        foreach (var level in new[] { 4, 5 })
        {
            var v = level == 5 ? "5.0" : "3.1.1";
            var none = level == 5 ? new byte[] { 0 } : [];
            seeds.Add(new($"CONNECT {v}", level, Packet(0x10, ConnectBody(level, "client-1"))));
            seeds.Add(new($"CONNECT {v} with will and credentials", level, Packet(0x10, ConnectBody(
                level, "client-2", cleanStart: false, keepAlive: 30,
                properties: level == 5 ? Props([0x11, .. U32(300)], [0x21, .. U16(10)], [0x27, .. U32(4096)], [0x17, 1], userProperty) : null,
                username: "user", password: [1, 2, 3], willTopic: "will/topic", willPayload: [9, 8], willQos: 1, willRetain: true,
                willProperties: level == 5 ? Props([0x18, .. U32(5)], [0x01, 1], [0x02, .. U32(60)], [0x03, .. Str("text/plain")], [0x08, .. Str("reply/to")], [0x09, .. Bin([7])], userProperty) : null))));
            seeds.Add(new($"PUBLISH {v} QoS 0", level, Publish(level, "a/b", [1, 2, 3])));
            seeds.Add(new($"PUBLISH {v} QoS 1 retained", level, Publish(level, "sensor/x/telemetry", "{\"t\":21.5}"u8.ToArray(), qos: 1, packetId: 7, retain: true)));
            seeds.Add(new($"PUBLISH {v} QoS 2 dup", level, Publish(level, "q/2", [0xFF], qos: 2, packetId: 0xFFFF, dup: true)));
            seeds.Add(new($"PUBACK {v}", level, Packet(0x40, U16(7))));
            seeds.Add(new($"PUBREC {v}", level, Packet(0x50, U16(8))));
            seeds.Add(new($"PUBREL {v}", level, Packet(0x62, U16(8))));
            seeds.Add(new($"PUBCOMP {v}", level, Packet(0x70, U16(8))));
            seeds.Add(new($"SUBSCRIBE {v}", level, Packet(0x82, U16(3), none, Str("a/+/c"), [1], Str("#"), [level == 5 ? (byte)0x2E : (byte)2])));
            seeds.Add(new($"UNSUBSCRIBE {v}", level, Packet(0xA2, U16(4), none, Str("a/+/c"), Str("#"))));
            seeds.Add(new($"PINGREQ {v}", level, [0xC0, 0x00]));
            seeds.Add(new($"DISCONNECT {v}", level, [0xE0, 0x00]));
        }

        seeds.Add(new("PUBLISH 5.0 with properties", 5, Packet(0x32, Str("a/b"), U16(1), Props([0x01, 1], [0x02, .. U32(9)], [0x08, .. Str("r/t")], [0x09, .. Bin([1, 2])], userProperty, [0x03, .. Str("ct")]), [1, 2, 3])));
        seeds.Add(new("PUBACK 5.0 with reason and properties", 5, Packet(0x40, U16(1), [0x10], Props([0x1F, .. Str("no subscribers")], userProperty))));
        seeds.Add(new("PUBREL 5.0 with reason", 5, Packet(0x62, U16(1), [0x92], Props())));
        seeds.Add(new("SUBSCRIBE 5.0 with identifier", 5, Packet(0x82, U16(1), Props([0x0B, .. Vbi(268_435_455)], userProperty), Str("x/#"), [0x1D])));
        seeds.Add(new("UNSUBSCRIBE 5.0 with properties", 5, Packet(0xA2, U16(1), Props(userProperty), Str("x/#"))));
        seeds.Add(new("DISCONNECT 5.0 with properties", 5, Packet(0xE0, [0x04], Props([0x11, .. U32(10)], [0x1F, .. Str("bye")], userProperty))));
        seeds.Add(new("AUTH 5.0", 5, Packet(0xF0, [0x18], Props([0x15, .. Str("SCRAM")], [0x16, .. Bin([1, 2, 3])]))));
        return seeds;
    }

    /// <summary>A mutation of <paramref name="seed"/>, sometimes spliced with <paramref name="other"/>.</summary>
    public static byte[] Mutate(Random random, byte[] seed, byte[] other)
    {
        var bytes = new List<byte>(seed);
        var mutations = 1 + random.Next(4);
        for (var m = 0; m < mutations; m++)
        {
            switch (random.Next(9))
            {
                case 0 when bytes.Count > 0:
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                    break;
                case 1 when bytes.Count > 0:
                    bytes[random.Next(bytes.Count)] ^= (byte)(1 << random.Next(8));
                    break;
                case 2 when bytes.Count > 0:
                    // Boundary values where lengths, flags and ids live.
                    bytes[random.Next(bytes.Count)] = random.Next(5) switch { 0 => 0x00, 1 => 0xFF, 2 => 0x80, 3 => 0x7F, _ => 0x01 };
                    break;
                case 3:
                    bytes.InsertRange(random.Next(bytes.Count + 1), RandomBytes(random, 1 + random.Next(4)));
                    break;
                case 4 when bytes.Count > 0:
                    {
                        var start = random.Next(bytes.Count);
                        bytes.RemoveRange(start, Math.Min(bytes.Count - start, 1 + random.Next(4)));
                        break;
                    }

                case 5:
                    {
                        // Truncation.
                        var cut = random.Next(bytes.Count + 1);
                        bytes.RemoveRange(cut, bytes.Count - cut);
                        break;
                    }

                case 6:
                    // Extension: random bytes, or the tail of another packet.
                    bytes.AddRange(random.Next(2) == 0 ? RandomBytes(random, 1 + random.Next(64)) : other[random.Next(other.Length)..]);
                    break;
                case 7:
                    {
                        // Splice: a prefix of this packet and a suffix of the other.
                        var cut = random.Next(bytes.Count + 1);
                        bytes.RemoveRange(cut, bytes.Count - cut);
                        bytes.AddRange(other[random.Next(other.Length)..]);
                        break;
                    }

                case 8 when bytes.Count > 2:
                    {
                        // A length field inside the body (two-byte big-endian) set to something else.
                        var at = 2 + random.Next(bytes.Count - 2);
                        var value = random.Next(3) switch { 0 => 0xFFFF, 1 => random.Next(bytes.Count + 8), _ => 0 };
                        bytes[at] = (byte)(value >> 8);
                        if (at + 1 < bytes.Count)
                        {
                            bytes[at + 1] = (byte)value;
                        }

                        break;
                    }
            }
        }

        var mutated = bytes.ToArray();

        // Most mutations get a remaining length that fits their body, so that they reach the decoders.
        return random.Next(4) != 0 && mutated.Length > 0 ? WithFittingRemainingLength(mutated) : mutated;
    }

    /// <summary>The body after the (possibly broken) fixed header, behind the first byte and a remaining length that fits it.</summary>
    private static byte[] WithFittingRemainingLength(byte[] packet)
    {
        var first = packet[0];
        var index = 1;
        while (index < packet.Length && index < 5 && (packet[index] & 0x80) != 0)
        {
            index++;
        }

        var body = index + 1 <= packet.Length ? packet[(index + 1)..] : [];
        return Packet(first, body);
    }

    private static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
