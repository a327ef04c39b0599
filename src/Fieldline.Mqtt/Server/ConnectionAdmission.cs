using System.Collections.Concurrent;
using System.Net;

namespace Fieldline.Mqtt.Server;

/// <summary>
/// Decides whether a client connection may proceed: the total number of connections, the number per IP address
/// and the rate of CONNECT packets (a token bucket over all clients). A connection admitted at CONNECT holds a
/// <see cref="Ticket"/> that gives its places back when it ends.
/// </summary>
/// <remarks>
/// The total is checked twice: when the socket is accepted (a full broker closes it at once, without reading or
/// answering anything, so that a flood of sockets costs next to nothing) and at CONNECT (a CONNACK says why,
/// for a connection that was accepted while there was still room). The rate is checked last, so that connections
/// refused for room do not use up tokens, and before authentication, which can be slow on purpose.
/// </remarks>
internal sealed class ConnectionAdmission
{
    private readonly MqttBrokerOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly MqttBrokerMetrics _metrics;
    private readonly ConcurrentDictionary<IPAddress, int> _perAddress = new();
    private readonly Lock _bucketLock = new();
    private int _admitted;
    private double _tokens;
    private long _refilledAt;

    public ConnectionAdmission(MqttBrokerOptions options, TimeProvider timeProvider, MqttBrokerMetrics metrics)
    {
        _options = options;
        _timeProvider = timeProvider;
        _metrics = metrics;
        _tokens = Math.Max(1, options.ConnectRateBurst);
        _refilledAt = timeProvider.GetTimestamp();
    }

    /// <summary>Connections admitted and not yet ended.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>When a socket is accepted: false when the broker is full and the socket is to be closed unanswered.</summary>
    public bool HasRoom()
    {
        if (_options.MaximumConnections > 0 && Admitted >= _options.MaximumConnections)
        {
            _metrics.LimitReached(MqttLimitNames.Connections);
            return false;
        }

        return true;
    }

    /// <summary>
    /// At CONNECT, before authentication: a ticket to release when the connection ends, or null with the reason
    /// to refuse it with.
    /// </summary>
    public Ticket? TryAdmit(EndPoint? remoteEndPoint, out MqttReasonCode refusal)
    {
        var maximum = _options.MaximumConnections;
        if (Interlocked.Increment(ref _admitted) > maximum && maximum > 0)
        {
            Interlocked.Decrement(ref _admitted);
            return Refuse(MqttLimitNames.Connections, MqttReasonCode.ServerBusy, out refusal);
        }

        var address = (remoteEndPoint as IPEndPoint)?.Address;
        if (address is not null && address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var perAddress = _options.MaximumConnectionsPerAddress;
        if (address is not null && perAddress > 0 && _perAddress.AddOrUpdate(address, 1, static (_, count) => count + 1) > perAddress)
        {
            ReleaseAddress(address);
            Interlocked.Decrement(ref _admitted);
            return Refuse(MqttLimitNames.ConnectionsPerAddress, MqttReasonCode.QuotaExceeded, out refusal);
        }

        if (!TryTakeToken())
        {
            if (address is not null && perAddress > 0)
            {
                ReleaseAddress(address);
            }

            Interlocked.Decrement(ref _admitted);
            return Refuse(MqttLimitNames.ConnectRate, MqttReasonCode.ConnectionRateExceeded, out refusal);
        }

        refusal = MqttReasonCode.Success;
        return new Ticket(this, perAddress > 0 ? address : null);
    }

    private Ticket? Refuse(string limit, MqttReasonCode reason, out MqttReasonCode refusal)
    {
        _metrics.LimitReached(limit);
        refusal = reason;
        return null;
    }

    private bool TryTakeToken()
    {
        var rate = _options.MaximumConnectRate;
        if (rate <= 0)
        {
            return true;
        }

        lock (_bucketLock)
        {
            var now = _timeProvider.GetTimestamp();
            var burst = Math.Max(1, _options.ConnectRateBurst);
            _tokens = Math.Min(burst, _tokens + (_timeProvider.GetElapsedTime(_refilledAt, now).TotalSeconds * rate));
            _refilledAt = now;
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    private void ReleaseAddress(IPAddress address)
    {
        if (_perAddress.AddOrUpdate(address, 0, static (_, count) => count - 1) <= 0)
        {
            // Forget addresses with no connection left, unless one was added in between (then the value is not 0).
            _perAddress.TryRemove(new KeyValuePair<IPAddress, int>(address, 0));
        }
    }

    /// <summary>The places an admitted connection holds; released once when it ends.</summary>
    internal sealed class Ticket(ConnectionAdmission admission, IPAddress? address)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 1)
            {
                return;
            }

            if (address is not null)
            {
                admission.ReleaseAddress(address);
            }

            Interlocked.Decrement(ref admission._admitted);
        }
    }
}
