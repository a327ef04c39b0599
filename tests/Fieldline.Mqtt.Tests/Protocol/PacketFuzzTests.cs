using System.Buffers;
using System.Diagnostics;
using Fieldline.Mqtt.Protocol;
using Fieldline.Mqtt.Tests.Infrastructure;

namespace Fieldline.Mqtt.Tests.Protocol;

/// <summary>
/// Seeded mutation fuzzing of the packet path as the broker runs it: <see cref="MqttFrameReader.TryReadFrame"/>
/// over a single-segment and a multi-segment buffer, then the decoder for each frame's type. Every input must
/// end in a result or an <see cref="MqttProtocolException"/>, allocate within a bound proportional to its
/// length, and be read the same whichever way its bytes are split. Each input comes from its own
/// <see cref="Random"/> (seed and iteration), so a failure names what reproduces it.
/// </summary>
public class PacketFuzzTests
{
    private const int MutationsPerSeed = 2_500;
    private const int BaseSeed = 0x5EED;
    private const int MaxFramesPerInput = 512;
    private static readonly TimeSpan SlowInput = TimeSpan.FromSeconds(1);

    public static TheoryData<string> SeedNames => [.. PacketMutator.Seeds.Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(SeedNames))]
    public void Mutated_packets_decode_or_throw_a_protocol_exception_within_bounded_time_and_allocation(string seedName)
    {
        var seeds = PacketMutator.Seeds;
        var seedIndex = seeds.Select(s => s.Name).ToList().IndexOf(seedName);
        var seed = seeds[seedIndex];
        var failures = new List<string>();
        var outcomes = new List<Outcome>(MaxFramesPerInput);
        var multiOutcomes = new List<Outcome>(MaxFramesPerInput);
        Warm(seed);

        for (var iteration = 0; iteration < MutationsPerSeed && failures.Count < 10; iteration++)
        {
            var input = Input.Create(seeds, seedIndex, iteration);
            var failure = Check(input, outcomes, multiOutcomes);
            if (failure is not null)
            {
                failures.Add($"{input}: {failure}");
            }
        }

        Assert.True(failures.Count == 0, $"{seedName}: {failures.Count} input(s) failed (each reproduces from its seed and iteration):\n" + string.Join("\n", failures));
    }

    /// <summary>The first pass through a decoder (JIT, first exception of a kind) allocates once; keep it out of the bound.</summary>
    private static void Warm(SeedPacket seed)
    {
        var outcomes = new List<Outcome>(MaxFramesPerInput);
        for (var i = 0; i < 20; i++)
        {
            var input = Input.Create(PacketMutator.Seeds, PacketMutator.Seeds.ToList().IndexOf(seed), -1 - i);
            Run(new ReadOnlySequence<byte>(input.Bytes), input, outcomes);
        }
    }

    private static string? Check(Input input, List<Outcome> outcomes, List<Outcome> multiOutcomes)
    {
        var single = new ReadOnlySequence<byte>(input.Bytes);
        var multi = Segments.Split(input.Bytes, input.Cuts);
        try
        {
            var singleCost = Measure(single, input, outcomes);
            var multiCost = Measure(multi, input, multiOutcomes);
            var allocationBound = 64 * 1024 + (4L * input.Bytes.Length);
            foreach (var (what, cost) in new[] { ("single segment", singleCost), ("multi-segment", multiCost) })
            {
                if (cost.Elapsed > SlowInput)
                {
                    return $"{what}: took {cost.Elapsed.TotalMilliseconds:F0} ms (more than {SlowInput.TotalSeconds} s)";
                }

                if (cost.Allocated > allocationBound)
                {
                    return $"{what}: allocated {cost.Allocated} bytes, more than the bound of {allocationBound}";
                }
            }
        }
        catch (Exception e)
        {
            return $"{e.GetType().FullName} escaped: {e}";
        }

        if (!outcomes.SequenceEqual(multiOutcomes))
        {
            return $"single-segment and multi-segment reads differ:\n  {string.Join(" | ", outcomes)}\n  {string.Join(" | ", multiOutcomes)}";
        }

        return null;
    }

    private static (TimeSpan Elapsed, long Allocated) Measure(ReadOnlySequence<byte> buffer, Input input, List<Outcome> outcomes)
    {
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var started = Stopwatch.GetTimestamp();
        Run(buffer, input, outcomes);
        var elapsed = Stopwatch.GetElapsedTime(started);
        return (elapsed, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);
    }

    /// <summary>Reads frames as the connection does, decoding each, until the buffer holds no complete frame.</summary>
    private static void Run(ReadOnlySequence<byte> buffer, Input input, List<Outcome> outcomes)
    {
        outcomes.Clear();
        var start = buffer.Start;
        while (outcomes.Count < MaxFramesPerInput)
        {
            var status = MqttFrameReader.TryReadFrame(buffer, input.MaxPacketSize, out var frame, out var consumed, out var examined);
            var offset = buffer.Slice(start, status == MqttFrameStatus.Complete ? consumed : examined).Length;
            if (status != MqttFrameStatus.Complete)
            {
                outcomes.Add(new Outcome(status, 0, 0, offset, null));
                return;
            }

            if (frame.Body.Length > input.MaxPacketSize)
            {
                throw new InvalidOperationException($"A frame of {frame.Body.Length} bytes passed a maximum packet size of {input.MaxPacketSize}.");
            }

            var body = frame.Body.IsSingleSegment ? frame.Body.First : frame.Body.ToArray();
            outcomes.Add(new Outcome(status, frame.Header, body.Length, offset, Decode(frame, body, input.Version)));
            buffer = buffer.Slice(consumed);
            start = buffer.Start;
        }
    }

    /// <summary>Decodes a frame with the decoder the connection uses for its type; returns the protocol error, if any.</summary>
    private static MqttReasonCode? Decode(in MqttFrame frame, ReadOnlyMemory<byte> body, MqttProtocolVersion version)
    {
        try
        {
            switch (frame.Type)
            {
                case MqttPacketType.Connect:
                    MqttConnectPacket.Decode(frame.Flags, body.Span, out _);
                    break;
                case MqttPacketType.Publish:
                    MqttPacketDecoder.DecodePublish(frame.Flags, body, version);
                    break;
                case MqttPacketType.PubAck or MqttPacketType.PubRec or MqttPacketType.PubComp:
                    MqttPacketDecoder.DecodeAck(frame.Flags, 0, body.Span, version, out _);
                    break;
                case MqttPacketType.PubRel:
                    MqttPacketDecoder.DecodeAck(frame.Flags, 0x02, body.Span, version, out _);
                    break;
                case MqttPacketType.Subscribe:
                    MqttPacketDecoder.DecodeSubscribe(frame.Flags, body.Span, version);
                    break;
                case MqttPacketType.Unsubscribe:
                    MqttPacketDecoder.DecodeUnsubscribe(frame.Flags, body.Span, version);
                    break;
                case MqttPacketType.Disconnect:
                    MqttPacketDecoder.DecodeDisconnect(frame.Flags, body.Span, version, out _);
                    break;
                default:
                    // PINGREQ, AUTH and the types a server never receives are judged by the connection, not decoded.
                    break;
            }

            return null;
        }
        catch (MqttProtocolException e)
        {
            return e.ReasonCode;
        }
    }

    /// <summary>What reading one frame gave: compared between the single- and multi-segment reads.</summary>
    private readonly record struct Outcome(MqttFrameStatus Status, byte Header, int BodyLength, long Offset, MqttReasonCode? Error)
    {
        public override string ToString() => $"{Status} {Header:X2} body {BodyLength} at {Offset} -> {(Error is { } e ? e.ToString() : "ok")}";
    }

    /// <summary>One fuzz input, derived only from the seed packet's index and the iteration.</summary>
    private sealed record Input(string SeedName, int Seed, int Iteration, byte[] Bytes, int[] Cuts, int MaxPacketSize, MqttProtocolVersion Version)
    {
        public static Input Create(IReadOnlyList<SeedPacket> seeds, int seedIndex, int iteration)
        {
            var seed = BaseSeed + seedIndex;
            var random = new Random(unchecked((seed * 1_000_003) + iteration));
            var packet = seeds[seedIndex];
            var bytes = PacketMutator.Mutate(random, packet.Packet, seeds[random.Next(seeds.Count)].Packet);

            // Segment boundaries anywhere, empty segments included (a ReadOnlySequence may have them).
            var cuts = Enumerable.Range(0, 1 + random.Next(4)).Select(_ => random.Next(bytes.Length + 1)).Order().ToArray();

            // Mostly the broker's default; sometimes small enough that the frame is too large.
            var maxPacketSize = random.Next(8) == 0 ? 2 + random.Next(64) : 1024 * 1024;

            // Mostly the level the packet was written for; sometimes the other one.
            var level = random.Next(6) == 0 ? 9 - packet.Level : packet.Level;
            return new Input(packet.Name, seed, iteration, bytes, cuts, maxPacketSize, (MqttProtocolVersion)level);
        }

        public override string ToString() =>
            $"seed {Seed} ({SeedName}) iteration {Iteration}, {Version}, max packet size {MaxPacketSize}, cuts [{string.Join(",", Cuts)}], input {Convert.ToHexString(Bytes)}";
    }

    private sealed class Segments : ReadOnlySequenceSegment<byte>
    {
        private Segments(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        /// <summary>The bytes as a sequence of segments cut at <paramref name="cuts"/> (ascending offsets).</summary>
        public static ReadOnlySequence<byte> Split(byte[] bytes, int[] cuts)
        {
            var first = new Segments(bytes.AsMemory(0, cuts[0]), 0);
            var last = first;
            for (var i = 0; i < cuts.Length; i++)
            {
                var end = i + 1 < cuts.Length ? cuts[i + 1] : bytes.Length;
                var next = new Segments(bytes.AsMemory(cuts[i], end - cuts[i]), cuts[i]);
                last.Next = next;
                last = next;
            }

            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }
}
