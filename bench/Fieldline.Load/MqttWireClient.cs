using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Fieldline.Load;

/// <summary>How a <see cref="MqttWireClient"/> connects.</summary>
/// <param name="Port">The broker's TCP port on 127.0.0.1.</param>
/// <param name="ClientId">The client identifier.</param>
/// <param name="Version">4 for MQTT 3.1.1, 5 for MQTT 5.0.</param>
/// <param name="User">User name, or null for anonymous.</param>
/// <param name="Password">Password, or null.</param>
/// <param name="CleanStart">Clean Start (5.0) / Clean Session (3.1.1).</param>
/// <param name="SessionExpirySeconds">5.0 Session Expiry Interval (0: the session ends with the connection).</param>
internal sealed record MqttWireOptions(int Port, string ClientId, byte Version, string? User, string? Password, bool CleanStart, uint SessionExpirySeconds = 0);

/// <summary>
/// A minimal MQTT 3.1.1/5.0 client over a raw socket for load generation: packets are encoded into one send buffer
/// and written with one send call per batch, and received packets are parsed in place from one receive buffer.
/// </summary>
/// <remarks>
/// A general-purpose client (MQTTnet) spends a task, a message object and a socket write per PUBLISH, which on this
/// 2-core machine would make the load generator, not the broker, the bottleneck. This client costs one copy of the
/// payload template per message and no allocation. It does only what the benchmarks need: CONNECT/CONNACK,
/// SUBSCRIBE/SUBACK, PUBLISH at QoS 0/1/2 both ways with their acknowledgements, DISCONNECT; it does not send
/// PINGREQ (keep-alive 0) and ignores PUBLISH properties.
/// </remarks>
internal sealed class MqttWireClient : IDisposable
{
    public const byte PublishType = 3;
    public const byte PubAckType = 4;
    public const byte PubRecType = 5;
    public const byte PubRelType = 6;
    public const byte PubCompType = 7;

    private readonly Socket _socket;
    private readonly byte[] _receive;
    private readonly byte[] _send;
    private int _receiveStart;
    private int _receiveEnd;
    private int _sendLength;

    private MqttWireClient(Socket socket, byte version, int bufferSize)
    {
        _socket = socket;
        Version = version;
        _receive = new byte[bufferSize];
        _send = new byte[bufferSize];
    }

    public byte Version { get; }

    /// <summary>The broker's Receive Maximum from a 5.0 CONNACK (65,535 when absent or for 3.1.1).</summary>
    public ushort ServerReceiveMaximum { get; private set; } = ushort.MaxValue;

    /// <summary>Whether CONNACK said the broker resumed a session.</summary>
    public bool SessionPresent { get; private set; }

    /// <summary>Bytes left in the send buffer.</summary>
    public int SendSpace => _send.Length - _sendLength;

    public int SendLength => _sendLength;

    /// <summary>Connects and completes the CONNECT/CONNACK exchange; throws when the broker refuses.</summary>
    public static async Task<MqttWireClient> ConnectAsync(MqttWireOptions options, CancellationToken cancellationToken, int bufferSize = 128 * 1024)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var client = new MqttWireClient(socket, options.Version, bufferSize);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, options.Port), cancellationToken);
            client.AppendConnect(options);
            await client.FlushAsync(cancellationToken);
            var (type, offset, length) = await client.ReadPacketAsync(cancellationToken);
            if (type != 2)
            {
                throw new InvalidOperationException($"{options.ClientId}: expected CONNACK, got packet type {type}");
            }

            client.ReadConnAck(options.ClientId, offset, length);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Subscribes to one filter and waits for SUBACK; throws when the broker refuses.</summary>
    public async Task SubscribeAsync(string filter, byte qos, CancellationToken cancellationToken)
    {
        var filterBytes = Encoding.UTF8.GetBytes(filter);
        var remaining = 2 + (Version == 5 ? 1 : 0) + 2 + filterBytes.Length + 1;
        var span = Reserve(1 + VarIntSize(remaining) + remaining);
        var i = 0;
        span[i++] = 0x82;
        i += WriteVarInt(span[i..], remaining);
        BinaryPrimitives.WriteUInt16BigEndian(span[i..], 1);
        i += 2;
        if (Version == 5)
        {
            span[i++] = 0;
        }

        BinaryPrimitives.WriteUInt16BigEndian(span[i..], (ushort)filterBytes.Length);
        i += 2;
        filterBytes.CopyTo(span[i..]);
        i += filterBytes.Length;
        span[i] = qos;
        await FlushAsync(cancellationToken);
        var (type, offset, length) = await ReadPacketAsync(cancellationToken);
        if (type != 9)
        {
            throw new InvalidOperationException($"expected SUBACK, got packet type {type}");
        }

        var code = _receive[offset + length - 1];
        if (code != qos)
        {
            throw new InvalidOperationException($"SUBSCRIBE {filter} at QoS {qos} answered 0x{code:X2}");
        }
    }

    /// <summary>Sends DISCONNECT (normal) and waits until the broker closes the connection.</summary>
    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        var span = Reserve(2);
        span[0] = 0xE0;
        span[1] = 0;
        await FlushAsync(cancellationToken);
        _socket.Shutdown(SocketShutdown.Send);

        // The broker closes its side once it has handled DISCONNECT (and detached the session).
        while (await ReceiveAsync(cancellationToken) > 0)
        {
            _receiveStart = _receiveEnd;
        }
    }

    /// <summary>Appends a PUBLISH: topic, packet id for QoS 1/2, empty 5.0 properties, then the payload from <paramref name="payload"/>.</summary>
    public void AppendPublish(ReadOnlySpan<byte> topic, byte qos, ushort packetId, PayloadTemplate payload, long timestamp) =>
        payload.Write(AppendPublishHeader(topic, qos, packetId, payload.Length), timestamp);

    /// <summary>Appends a PUBLISH with a payload given as is.</summary>
    public void AppendPublish(ReadOnlySpan<byte> topic, byte qos, ushort packetId, ReadOnlySpan<byte> payload) =>
        payload.CopyTo(AppendPublishHeader(topic, qos, packetId, payload.Length));

    /// <summary>Appends everything of a PUBLISH but its payload; returns where the payload goes.</summary>
    private Span<byte> AppendPublishHeader(ReadOnlySpan<byte> topic, byte qos, ushort packetId, int payloadLength)
    {
        var remaining = 2 + topic.Length + (qos > 0 ? 2 : 0) + (Version == 5 ? 1 : 0) + payloadLength;
        var span = Reserve(1 + VarIntSize(remaining) + remaining);
        var i = 0;
        span[i++] = (byte)(0x30 | (qos << 1));
        i += WriteVarInt(span[i..], remaining);
        BinaryPrimitives.WriteUInt16BigEndian(span[i..], (ushort)topic.Length);
        i += 2;
        topic.CopyTo(span[i..]);
        i += topic.Length;
        if (qos > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span[i..], packetId);
            i += 2;
        }

        if (Version == 5)
        {
            span[i++] = 0;
        }

        return span[i..];
    }

    /// <summary>The topic of a received PUBLISH.</summary>
    public ReadOnlySpan<byte> ReadPublishTopic(int offset, int length)
    {
        var body = _receive.AsSpan(offset, length);
        return body.Slice(2, BinaryPrimitives.ReadUInt16BigEndian(body));
    }

    /// <summary>Appends PUBACK, PUBREC, PUBREL or PUBCOMP (success, so no reason code).</summary>
    public void AppendAck(byte type, ushort packetId)
    {
        var span = Reserve(4);
        span[0] = (byte)((type << 4) | (type == PubRelType ? 0x02 : 0));
        span[1] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], packetId);
    }

    /// <summary>Whether a packet of this size fits the send buffer now.</summary>
    public bool Fits(int bytes) => _sendLength + bytes <= _send.Length;

    /// <summary>Writes everything appended so far.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var sent = 0;
        while (sent < _sendLength)
        {
            sent += await _socket.SendAsync(_send.AsMemory(sent, _sendLength - sent), SocketFlags.None, cancellationToken);
        }

        _sendLength = 0;
    }

    /// <summary>Reads more bytes into the receive buffer; 0 when the broker closed the connection.</summary>
    public async ValueTask<int> ReceiveAsync(CancellationToken cancellationToken)
    {
        if (_receiveStart == _receiveEnd)
        {
            _receiveStart = _receiveEnd = 0;
        }
        else if (_receive.Length - _receiveEnd < _receive.Length / 4 && _receiveStart > 0)
        {
            // A partial packet near the end: move it to the front so that the next read has room.
            Buffer.BlockCopy(_receive, _receiveStart, _receive, 0, _receiveEnd - _receiveStart);
            _receiveEnd -= _receiveStart;
            _receiveStart = 0;
        }

        if (_receiveEnd == _receive.Length)
        {
            throw new InvalidOperationException("a packet larger than the receive buffer");
        }

        int read;
        try
        {
            read = await _socket.ReceiveAsync(_receive.AsMemory(_receiveEnd), SocketFlags.None, cancellationToken);
        }
        catch (SocketException)
        {
            return 0;
        }

        _receiveEnd += read;
        return read;
    }

    /// <summary>Takes the next complete packet from the receive buffer: its first byte and where its body is.</summary>
    public bool TryTakePacket(out byte header, out int bodyOffset, out int bodyLength)
    {
        header = 0;
        bodyOffset = bodyLength = 0;
        var available = _receiveEnd - _receiveStart;
        if (available < 2)
        {
            return false;
        }

        var length = 0;
        var shift = 0;
        var i = _receiveStart + 1;
        while (true)
        {
            if (i >= _receiveEnd)
            {
                return false;
            }

            var b = _receive[i++];
            length |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }

            shift += 7;
            if (shift > 21)
            {
                throw new InvalidOperationException("malformed remaining length from the broker");
            }
        }

        if (_receiveEnd - i < length)
        {
            return false;
        }

        header = _receive[_receiveStart];
        bodyOffset = i;
        bodyLength = length;
        _receiveStart = i + length;
        return true;
    }

    public ReadOnlySpan<byte> Body(int offset, int length) => _receive.AsSpan(offset, length);

    /// <summary>The packet id of an acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP) and its reason code (0 when absent).</summary>
    public (ushort PacketId, byte Reason) ReadAck(int offset, int length) =>
        (BinaryPrimitives.ReadUInt16BigEndian(_receive.AsSpan(offset, 2)), length > 2 ? _receive[offset + 2] : (byte)0);

    /// <summary>Splits a received PUBLISH into its QoS, packet id and payload.</summary>
    public ReadOnlySpan<byte> ReadPublish(byte header, int offset, int length, out byte qos, out ushort packetId)
    {
        var body = _receive.AsSpan(offset, length);
        qos = (byte)((header >> 1) & 3);
        var i = 2 + BinaryPrimitives.ReadUInt16BigEndian(body);
        packetId = 0;
        if (qos > 0)
        {
            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[i..]);
            i += 2;
        }

        if (Version == 5)
        {
            var propertiesLength = ReadVarInt(body[i..], out var size);
            i += size + propertiesLength;
        }

        return body[i..];
    }

    public void Dispose() => _socket.Dispose();

    private async ValueTask<(byte Type, int Offset, int Length)> ReadPacketAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryTakePacket(out var header, out var offset, out var length))
            {
                return ((byte)(header >> 4), offset, length);
            }

            if (await ReceiveAsync(cancellationToken) == 0)
            {
                throw new InvalidOperationException("the broker closed the connection");
            }
        }
    }

    private void AppendConnect(MqttWireOptions o)
    {
        var id = Encoding.UTF8.GetBytes(o.ClientId);
        var user = o.User is null ? null : Encoding.UTF8.GetBytes(o.User);
        var password = o.Password is null ? null : Encoding.UTF8.GetBytes(o.Password);
        var properties = Version == 5 && o.SessionExpirySeconds > 0 ? 5 : 0;
        var remaining = 10 + (Version == 5 ? VarIntSize(properties) + properties : 0) + 2 + id.Length
            + (user is null ? 0 : 2 + user.Length) + (password is null ? 0 : 2 + password.Length);
        var span = Reserve(1 + VarIntSize(remaining) + remaining);
        var i = 0;
        span[i++] = 0x10;
        i += WriteVarInt(span[i..], remaining);
        "\0\u0004MQTT"u8.CopyTo(span[i..]);
        i += 6;
        span[i++] = Version;
        span[i++] = (byte)((o.CleanStart ? 0x02 : 0) | (user is null ? 0 : 0x80) | (password is null ? 0 : 0x40));
        span[i++] = 0;
        span[i++] = 0;
        if (Version == 5)
        {
            i += WriteVarInt(span[i..], properties);
            if (properties > 0)
            {
                span[i++] = 0x11;
                BinaryPrimitives.WriteUInt32BigEndian(span[i..], o.SessionExpirySeconds);
                i += 4;
            }
        }

        foreach (var field in new[] { id, user, password })
        {
            if (field is null)
            {
                continue;
            }

            BinaryPrimitives.WriteUInt16BigEndian(span[i..], (ushort)field.Length);
            i += 2;
            field.CopyTo(span[i..]);
            i += field.Length;
        }
    }

    private void ReadConnAck(string clientId, int offset, int length)
    {
        var body = _receive.AsSpan(offset, length);
        if (body.Length < 2 || body[1] != 0)
        {
            throw new InvalidOperationException($"{clientId}: CONNACK refused the connection (0x{(body.Length > 1 ? body[1] : 0xFF):X2})");
        }

        SessionPresent = (body[0] & 1) != 0;
        if (Version != 5 || body.Length < 3)
        {
            return;
        }

        var propertiesLength = ReadVarInt(body[2..], out var size);
        var properties = body.Slice(2 + size, propertiesLength);
        var i = 0;
        while (i < properties.Length)
        {
            var id = properties[i++];
            switch (id)
            {
                case 0x21:
                    ServerReceiveMaximum = BinaryPrimitives.ReadUInt16BigEndian(properties[i..]);
                    i += 2;
                    break;
                case 0x01 or 0x17 or 0x19 or 0x24 or 0x25 or 0x28 or 0x29 or 0x2A:
                    i += 1;
                    break;
                case 0x13 or 0x22 or 0x23:
                    i += 2;
                    break;
                case 0x02 or 0x11 or 0x18 or 0x27:
                    i += 4;
                    break;
                case 0x0B:
                    ReadVarInt(properties[i..], out var n);
                    i += n;
                    break;
                case 0x03 or 0x08 or 0x09 or 0x12 or 0x15 or 0x16 or 0x1A or 0x1C or 0x1F:
                    i += 2 + BinaryPrimitives.ReadUInt16BigEndian(properties[i..]);
                    break;
                case 0x26:
                    i += 2 + BinaryPrimitives.ReadUInt16BigEndian(properties[i..]);
                    i += 2 + BinaryPrimitives.ReadUInt16BigEndian(properties[i..]);
                    break;
                default:
                    throw new InvalidOperationException($"{clientId}: unknown CONNACK property 0x{id:X2}");
            }
        }
    }

    private Span<byte> Reserve(int bytes)
    {
        if (_sendLength + bytes > _send.Length)
        {
            throw new InvalidOperationException("send buffer full: flush first");
        }

        var span = _send.AsSpan(_sendLength, bytes);
        _sendLength += bytes;
        return span;
    }

    public static int VarIntSize(int value) => value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;

    private static int WriteVarInt(Span<byte> span, int value)
    {
        var i = 0;
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            span[i++] = value > 0 ? (byte)(b | 0x80) : b;
        }
        while (value > 0);
        return i;
    }

    private static int ReadVarInt(ReadOnlySpan<byte> span, out int size)
    {
        var value = 0;
        size = 0;
        byte b;
        do
        {
            b = span[size];
            value |= (b & 0x7F) << (7 * size);
            size++;
        }
        while ((b & 0x80) != 0);
        return value;
    }

    /// <summary>The size of a PUBLISH this client would append.</summary>
    public int PublishSize(int topicLength, byte qos, int payloadLength)
    {
        var remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + (Version == 5 ? 1 : 0) + payloadLength;
        return 1 + VarIntSize(remaining) + remaining;
    }
}

/// <summary>
/// A telemetry payload Fieldline's parser accepts (<c>{"ts":…,"values":{…}}</c>), padded with spaces to a fixed
/// size; only the 13-digit timestamp changes per message. The timestamp is also the message's identity: the
/// workloads give each message a distinct one, and subscribers read it back to count losses and duplicates.
/// </summary>
internal sealed class PayloadTemplate
{
    private const int TimestampOffset = 6;
    private readonly byte[] _template;

    public PayloadTemplate(int size)
    {
        var head = "{\"ts\":0000000000000,\"values\":{\"temperature\":21.5,\"humidity\":40.2,\"pressure\":1013.3}"u8;
        _template = new byte[Math.Max(size, head.Length + 1)];
        _template.AsSpan().Fill((byte)' ');
        head.CopyTo(_template);
        _template[^1] = (byte)'}';
    }

    public int Length => _template.Length;

    public void Write(Span<byte> destination, long timestamp)
    {
        _template.CopyTo(destination);
        var digits = destination.Slice(TimestampOffset, 13);
        for (var i = 12; i >= 0; i--)
        {
            digits[i] = (byte)('0' + (timestamp % 10));
            timestamp /= 10;
        }
    }

    /// <summary>The timestamp of a payload written by <see cref="Write"/>, or -1 for anything else.</summary>
    public static long ReadTimestamp(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < TimestampOffset + 13 || !payload.StartsWith("{\"ts\":"u8))
        {
            return -1;
        }

        long value = 0;
        foreach (var c in payload.Slice(TimestampOffset, 13))
        {
            if (c is < (byte)'0' or > (byte)'9')
            {
                return -1;
            }

            value = (value * 10) + (c - '0');
        }

        return value;
    }
}
