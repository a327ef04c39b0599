using System.Net;
using System.Net.Sockets;

namespace Fieldline.Mqtt.Tests.Infrastructure;

/// <summary>One packet as read off the wire.</summary>
public sealed record RawPacket(byte Header, byte[] Body)
{
    public int Type => Header >> 4;

    public override string ToString() => $"{Header:X2} {Convert.ToHexString(Body)}";

    /// <summary>Takes the first whole packet off the front of <paramref name="buffer"/>, if one is there.</summary>
    public static bool TryTake(List<byte> buffer, out RawPacket packet)
    {
        packet = null!;
        if (buffer.Count < 2)
        {
            return false;
        }

        var length = 0;
        var multiplier = 1;
        var index = 1;
        while (true)
        {
            if (index >= buffer.Count)
            {
                return false;
            }

            var b = buffer[index++];
            length += (b & 0x7F) * multiplier;
            if ((b & 0x80) == 0)
            {
                break;
            }

            multiplier *= 128;
        }

        if (buffer.Count < index + length)
        {
            return false;
        }

        packet = new RawPacket(buffer[0], [.. buffer.GetRange(index, length)]);
        buffer.RemoveRange(0, index + length);
        return true;
    }

}

/// <summary>A TCP client speaking bytes, for what a library client will not do (malformed packets, withheld acks).</summary>
public sealed class RawMqttClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly List<byte> _buffer = [];
    private readonly byte[] _chunk = new byte[64 * 1024];

    private RawMqttClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawMqttClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        return new RawMqttClient(tcp);
    }

    /// <summary>Connects, sends CONNECT and checks that CONNACK accepted it.</summary>
    public static async Task<RawMqttClient> ConnectMqttAsync(int port, int level, string clientId, bool cleanStart = true, byte[]? properties = null)
    {
        var client = await ConnectAsync(port);
        await client.SendAsync(Bytes.Connect(level, clientId, cleanStart, properties: properties));
        var connack = await client.ReadPacketAsync();
        Assert.True(connack is { Type: 2 }, $"expected CONNACK, got {connack?.ToString() ?? "EOF"}");
        Assert.Equal(0, connack!.Body[1]);
        return client;
    }

    public async Task SendAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

    /// <summary>The next packet, or null when the server closed the connection. Fails after the timeout.</summary>
    public async Task<RawPacket?> ReadPacketAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Poll.DefaultTimeout);
        try
        {
            while (true)
            {
                if (TryParse(out var packet))
                {
                    return packet;
                }

                int read;
                try
                {
                    read = await _stream.ReadAsync(_chunk, cts.Token);
                }
                catch (IOException)
                {
                    return null;
                }

                if (read == 0)
                {
                    return null;
                }

                _buffer.AddRange(_chunk.AsSpan(0, read));
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"No packet and no close within {(timeout ?? Poll.DefaultTimeout).TotalSeconds} s (buffered: {Convert.ToHexString([.. _buffer])})");
            throw;
        }
    }

    /// <summary>Whether a packet arrives within <paramref name="window"/> (used to check that something is NOT sent).</summary>
    public async Task<RawPacket?> TryReadPacketAsync(TimeSpan window)
    {
        if (TryParse(out var buffered))
        {
            return buffered;
        }

        using var cts = new CancellationTokenSource(window);
        try
        {
            while (true)
            {
                var read = await _stream.ReadAsync(_chunk, cts.Token);
                if (read == 0)
                {
                    return null;
                }

                _buffer.AddRange(_chunk.AsSpan(0, read));
                if (TryParse(out var packet))
                {
                    return packet;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Reads until the server closes the connection; returns what it sent before.</summary>
    public async Task<List<RawPacket>> ReadUntilClosedAsync()
    {
        var packets = new List<RawPacket>();
        while (await ReadPacketAsync() is { } packet)
        {
            packets.Add(packet);
        }

        return packets;
    }

    /// <summary>Closes the sending direction (TCP FIN): the server sees end of stream after what was sent.</summary>
    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Client.Close();
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    private bool TryParse(out RawPacket packet) => RawPacket.TryTake(_buffer, out packet);
}
