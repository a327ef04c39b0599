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
    private readonly Dictionary<(CoapResource Resource, string Path), List<Observer>> _byPath = []; // under its own lock
    private long _registrations;
    private readonly ConcurrentDictionary<(IPEndPoint Remote, ushort MessageId), Observer> _byNotification = new();

    public int Count => _observers.Count;

    /// <summary>Registers (or refreshes) an observation; a client observing again with the same token replaces it (§4.1).</summary>
    public void Add(CoapResource resource, CoapRequest request)
    {
        var observer = new Observer(resource, request, Interlocked.Increment(ref _registrations));
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

        Observer? evicted = null;
        lock (_byPath)
        {
            var key = (resource, request.PathText);
            if (!_byPath.TryGetValue(key, out var observers))
            {
                _byPath[key] = observers = [];
            }

            observers.Add(observer);
            if (observers.Count > resource.MaximumObserversPerPath)
            {
                evicted = observers.MinBy(o => o.Registration);
            }
        }

        resource.ObserveStarted(request);
        if (evicted is not null)
        {
            Remove(evicted);
        }
    }

    /// <summary>Whether the observation is still registered (not ended or replaced).</summary>
    public bool IsRegistered(Observer observer) =>
        _observers.TryGetValue((observer.Resource, observer.Request.Remote, Convert.ToHexString(observer.Request.Token)), out var current) && current == observer;

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

        lock (_byPath)
        {
            return _byPath.TryGetValue((resource, path), out var observers) ? [.. observers] : [];
        }
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
        lock (_byPath)
        {
            if (_byPath.TryGetValue(key, out var observers) && observers.Remove(observer) && observers.Count == 0)
            {
                _byPath.Remove(key);
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

    internal sealed class Observer(CoapResource resource, CoapRequest request, long registration)
    {
        /// <summary>The order of registration: the oldest of a path goes first past its limit.</summary>
        public long Registration { get; } = registration;

        public CoapResource Resource { get; } = resource;

        public CoapRequest Request { get; } = request;

        public ushort? LastMessageId { get; set; }

        /// <summary>One notification of an observer is built and sent at a time, so they leave in sequence order.</summary>
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>When the last Confirmable notification went out (RFC 7641 §4.5: at least one a day).</summary>
        public long LastConfirmable { get; set; }
    }
}
