using System.Collections.Concurrent;
using System.Net;

namespace Fieldline.Coap.Protocol;

/// <summary>RFC 7252 §4.8's transmission parameters: ACK_TIMEOUT, ACK_RANDOM_FACTOR, MAX_RETRANSMIT.</summary>
internal sealed record TransmissionParameters(TimeSpan AckTimeout, double AckRandomFactor, int MaxRetransmit);

/// <summary>
/// Confirmable messages an endpoint sent and awaits an acknowledgement for, retransmitted as RFC 7252 §4.2 says: the
/// first timeout is random between ACK_TIMEOUT and ACK_TIMEOUT × ACK_RANDOM_FACTOR, doubled after each
/// retransmission, and after MAX_RETRANSMIT retransmissions the message is given up.
/// </summary>
internal sealed class ConfirmableTransmissions(TransmissionParameters options, TimeProvider timeProvider, Action<byte[], IPEndPoint> send)
{
    private readonly ConcurrentDictionary<(IPEndPoint Remote, ushort MessageId), Transmission> _pending = new();

    /// <summary>How many messages await acknowledgement.</summary>
    public int Count => _pending.Count;

    /// <summary>Sends <paramref name="datagram"/>; the task is true once acknowledged, false when reset or given up.</summary>
    public Task<bool> SendAsync(byte[] datagram, ushort messageId, IPEndPoint remote)
    {
        var timeout = options.AckTimeout * (1 + (Random.Shared.NextDouble() * (options.AckRandomFactor - 1)));
        var transmission = new Transmission(datagram, remote, timeout);
        var key = (remote, messageId);
        if (!_pending.TryAdd(key, transmission))
        {
            throw new InvalidOperationException($"Message id {messageId} to {remote} is still awaiting acknowledgement.");
        }

        transmission.Timer = timeProvider.CreateTimer(_ => OnTimeout(key), null, timeout, Timeout.InfiniteTimeSpan);
        send(datagram, remote);
        return transmission.Outcome.Task;
    }

    /// <summary>The peer answered message <paramref name="messageId"/> with an ACK (or a RST when <paramref name="reset"/>).</summary>
    public bool OnAnswer(IPEndPoint remote, ushort messageId, bool reset)
    {
        if (!_pending.TryRemove((remote, messageId), out var transmission))
        {
            return false;
        }

        transmission.Timer?.Dispose();
        transmission.Outcome.TrySetResult(!reset);
        return true;
    }

    /// <summary>Gives up everything still pending (the server stops).</summary>
    public void Clear()
    {
        foreach (var key in _pending.Keys)
        {
            if (_pending.TryRemove(key, out var transmission))
            {
                transmission.Timer?.Dispose();
                transmission.Outcome.TrySetResult(false);
            }
        }
    }

    private void OnTimeout((IPEndPoint Remote, ushort MessageId) key)
    {
        if (!_pending.TryGetValue(key, out var transmission))
        {
            return;
        }

        if (transmission.Retransmissions == options.MaxRetransmit)
        {
            if (_pending.TryRemove(key, out _))
            {
                transmission.Timer?.Dispose();
                transmission.Outcome.TrySetResult(false);
            }

            return;
        }

        transmission.Retransmissions++;
        transmission.Timeout *= 2;
        send(transmission.Datagram, transmission.Remote);
        transmission.Timer?.Change(transmission.Timeout, Timeout.InfiniteTimeSpan);
    }

    private sealed class Transmission(byte[] datagram, IPEndPoint remote, TimeSpan timeout)
    {
        public byte[] Datagram { get; } = datagram;

        public IPEndPoint Remote { get; } = remote;

        public TimeSpan Timeout { get; set; } = timeout;

        public int Retransmissions { get; set; }

        public ITimer? Timer { get; set; }

        public TaskCompletionSource<bool> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
