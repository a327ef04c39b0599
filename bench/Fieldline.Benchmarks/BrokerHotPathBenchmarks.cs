using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Fieldline.Mqtt;
using Fieldline.Mqtt.Protocol;
using Fieldline.Mqtt.Topics;

namespace Fieldline.Benchmarks;

/// <summary>
/// The broker's per-message work on the QoS 0 path, piece by piece: frame, decode, match in a tree of 10,000
/// subscriptions, encode for the subscriber. Each must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class BrokerHotPathBenchmarks
{
    private readonly TopicTree<object> _tree = new();
    private readonly List<TopicSubscription<object>> _matches = new(16);
    private readonly ArrayBufferWriter<byte> _output = new(4096);
    private byte[] _packet = [];
    private ReadOnlySequence<byte> _sequence;
    private byte[] _topic = [];

    [GlobalSetup]
    public void Setup()
    {
        // 10,000 devices with exact subscriptions, plus the wildcards an operator and a dashboard would use.
        for (var i = 0; i < 10_000; i++)
        {
            var subscriber = new object();
            _tree.Add($"device/dev-{i}/command", subscriber, new TopicSubscription<object>(subscriber, $"device/dev-{i}/command", 1, false, false, 0));
        }

        var operatorSubscriber = new object();
        _tree.Add("sensor/+/telemetry", operatorSubscriber, new TopicSubscription<object>(operatorSubscriber, "sensor/+/telemetry", 0, false, false, 0));
        _tree.Add("sensor/#", operatorSubscriber, new TopicSubscription<object>(operatorSubscriber, "sensor/#", 0, false, false, 0));

        _topic = Encoding.UTF8.GetBytes("sensor/dev-4242/telemetry");
        var payload = Encoding.UTF8.GetBytes("""{"ts":1732550000123,"values":{"temperature":21.5,"humidity":40.2,"vibration":0.213}}""");
        var writer = new ArrayBufferWriter<byte>();
        MqttPacketEncoder.WritePublish(writer, MqttProtocolVersion.V500, _topic, payload, 0, false, false, 0, default);
        _packet = writer.WrittenSpan.ToArray();
        _sequence = new ReadOnlySequence<byte>(_packet);
    }

    [Benchmark]
    public int FrameAndDecodePublish()
    {
        MqttFrameReader.TryReadFrame(_sequence, 1 << 20, out var frame, out _, out _);
        var publish = MqttPacketDecoder.DecodePublish(frame.Flags, frame.Body.First, MqttProtocolVersion.V500);
        return publish.Payload.Length;
    }

    [Benchmark]
    public int MatchInTreeOf10000()
    {
        _matches.Clear();
        _tree.Match(_topic, _matches);
        return _matches.Count;
    }

    [Benchmark]
    public int EncodePublishForSubscriber()
    {
        _output.ResetWrittenCount();
        MqttPacketEncoder.WritePublish(_output, MqttProtocolVersion.V311, _topic, _packet.AsSpan(^90), 0, false, false, 0, default);
        return _output.WrittenCount;
    }
}
