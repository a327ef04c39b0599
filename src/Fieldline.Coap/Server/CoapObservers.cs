using System.Collections.Concurrent;
using System.Net;

namespace Fieldline.Coap.Server;

/// <summary>
/// The observers of the server's resources (RFC 7641): who registered with GET and Observe 0, under which token, and
/// the number of the last notification each was sent, so that a Reset to it ends the observation (§3.6). Observers
/// are also indexed by the path they asked for, so that a change of one device's resource reaches its observers
/// without a scan of everyone's.
/// </summary>
internal sealed class CoapObservers
{
    private readonly ConcurrentDictionary<(CoapResource Resource, IPEndPoint Remote, string Token), Observer> _observers = new();
    private readonly ConcurrentDictionary<(CoapResource Resource, string Path), ConcurrentDictionary<Observer, byte>> _byPath = new();
    private readonly ConcurrentDictionary<(IPEndPoint Remote, ushort MessageId), Observer> _byNotification = new();

    public int Count => _observers.Count;

    /// <summary>Registers (or refreshes) an observation; a client observing again with the same token replaces it (§4.1).</summary>
    public void Add(CoapResource resource, CoapRequest request)
    {
        var observer = new Observer(resource, request);
        var replaced = default(Observer);
        _observers.AddOrUpdate(
            (resource, request.Remote, Convert.ToHexString(request.Token)),
            observer,
            (_, previous) =>
            {
                replaced = previous;
                return observer;
            });
        if (replaced is not null)
        {
            Ended(replaced);
        }

        _byPath.GetOrAdd((resource, request.PathText), _ => new ConcurrentDictionary<Observer, byte>())[observer] = 0;
        resource.ObserveStarted(request);
    }

    public void Remove(CoapResource resource, IPEndPoint remote, byte[] token)
    {
        if (_observers.TryRemove((resource, remote, Convert.ToHexString(token)), out var observer))
        {
            Ended(observer);
        }
    }

    /// <summary>Ends this observation, unless a newer registration with the same token replaced it already.</summary>
    public void Remove(Observer observer)
    {
        if (_observers.TryRemove(new KeyValuePair<(CoapResource, IPEndPoint, string), Observer>(
            (observer.Resource, observer.Request.Remote, Convert.ToHexString(observer.Request.Token)), observer)))
        {
            Ended(observer);
        }
    }

    /// <summary>The observers of <paramref name="resource"/>; with a path, only those that asked for that path.</summary>
    public IEnumerable<Observer> Of(CoapResource resource, string? path)
    {
        if (path is null)
        {
            return _observers.Values.Where(o => o.Resource == resource);
        }

        return _byPath.TryGetValue((resource, path), out var observers) ? observers.Keys : [];
    }

    /// <summary>Records that a notification went out as <paramref name="messageId"/>.</summary>
    public void Sent(Observer observer, ushort messageId)
    {
        Forget(observer);
        observer.LastMessageId = messageId;
        _byNotification[(observer.Request.Remote, messageId)] = observer;
    }

    /// <summary>A Reset arrived: when it answers a notification, that observation ends. True when one did.</summary>
    public bool OnReset(IPEndPoint remote, ushort messageId)
    {
        if (!_byNotification.TryRemove((remote, messageId), out var observer))
        {
            return false;
        }

        Remove(observer);
        return true;
    }

    private void Ended(Observer observer)
    {
        Forget(observer);
        var key = (observer.Resource, observer.Request.PathText);
        if (_byPath.TryGetValue(key, out var observers))
        {
            observers.TryRemove(observer, out _);
            if (observers.IsEmpty)
            {
                // Another registration may have joined between the check and the removal: it is put back.
                _byPath.TryRemove(new KeyValuePair<(CoapResource, string), ConcurrentDictionary<Observer, byte>>(key, observers));
                foreach (var late in observers.Keys)
                {
                    _byPath.GetOrAdd(key, _ => new ConcurrentDictionary<Observer, byte>())[late] = 0;
                }
            }
        }

        observer.Resource.ObserveEnded(observer.Request);
    }

    private void Forget(Observer observer)
    {
        if (observer.LastMessageId is { } last)
        {
            _byNotification.TryRemove((observer.Request.Remote, last), out _);
        }
    }

    internal sealed class Observer(CoapResource resource, CoapRequest request)
    {
        public CoapResource Resource { get; } = resource;

        public CoapRequest Request { get; } = request;

        public ushort? LastMessageId { get; set; }

        /// <summary>One notification of an observer is built and sent at a time, so they leave in sequence order.</summary>
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>When the last Confirmable notification went out (RFC 7641 §4.5: at least one a day).</summary>
        public long LastConfirmable { get; set; }
    }
}
