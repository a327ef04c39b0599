using System.Text;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>Hand-written MQTT bytes: the helpers only concatenate and prefix lengths, so tests read like the spec.</summary>
public static class Bytes
{
    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    /// <summary>A UTF-8 string or binary field: two-byte big-endian length, then the bytes.</summary>
    public static byte[] Str(string value) => Bin(Encoding.UTF8.GetBytes(value));

    public static byte[] Bin(byte[] value) => Concat([(byte)(value.Length >> 8), (byte)value.Length], value);

    public static byte[] U16(int value) => [(byte)(value >> 8), (byte)value];

    public static byte[] U32(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];

    public static byte[] Vbi(int value)
    {
        var result = new List<byte>();
        do
        {
            var b = (byte)(value % 128);
            value /= 128;
            if (value > 0)
            {
                b |= 0x80;
            }

            result.Add(b);
        }
        while (value > 0);
        return [.. result];
    }

    /// <summary>A properties block: its length as a Variable Byte Integer, then the properties.</summary>
    public static byte[] Props(params byte[][] properties)
    {
        var body = Concat(properties);
        return Concat(Vbi(body.Length), body);
    }

    /// <summary>A whole packet: the first byte, the remaining length, the body.</summary>
    public static byte[] Packet(byte header, params byte[][] body)
    {
        var b = Concat(body);
        return Concat([header], Vbi(b.Length), b);
    }

    /// <summary>A CONNECT body (3.1.1 or 5.0) with the usual fields.</summary>
    public static byte[] ConnectBody(int level, string clientId, bool cleanStart = true, ushort keepAlive = 60, byte[]? properties = null, string? username = null, byte[]? password = null, string? willTopic = null, byte[]? willPayload = null, byte willQos = 0, bool willRetain = false, byte[]? willProperties = null)
    {
        var flags = (byte)((cleanStart ? 0x02 : 0) | (willTopic is null ? 0 : 0x04 | (willQos << 3) | (willRetain ? 0x20 : 0)) | (password is null ? 0 : 0x40) | (username is null ? 0 : 0x80));
        var parts = new List<byte[]> { Str("MQTT"), new byte[] { (byte)level, flags }, U16(keepAlive) };
        if (level == 5)
        {
            parts.Add(properties ?? [0]);
        }

        parts.Add(Str(clientId));
        if (willTopic is not null)
        {
            if (level == 5)
            {
                parts.Add(willProperties ?? [0]);
            }

            parts.Add(Str(willTopic));
            parts.Add(Bin(willPayload ?? []));
        }

        if (username is not null)
        {
            parts.Add(Str(username));
        }

        if (password is not null)
        {
            parts.Add(Bin(password));
        }

        return Concat([.. parts]);
    }

    public static byte[] Connect(int level, string clientId, bool cleanStart = true, ushort keepAlive = 60, byte[]? properties = null, string? willTopic = null, byte[]? willPayload = null) =>
        Packet(0x10, ConnectBody(level, clientId, cleanStart, keepAlive, properties, willTopic: willTopic, willPayload: willPayload));

    public static byte[] Subscribe(int level, ushort packetId, string filter, byte options) =>
        Packet(0x82, U16(packetId), level == 5 ? [0] : [], Str(filter), [options]);

    public static byte[] Publish(int level, string topic, byte[] payload, byte qos = 0, ushort packetId = 0, bool retain = false, bool dup = false) =>
        Packet((byte)(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)), Str(topic), qos > 0 ? U16(packetId) : [], level == 5 ? [0] : [], payload);

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);
}
