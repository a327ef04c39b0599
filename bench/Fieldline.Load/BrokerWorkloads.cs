using System.Diagnostics;

namespace Fieldline.Load;

/// <summary>
/// Fan-in: many publishers, one subscriber. Every publisher has its own connection and topic; the subscriber
/// takes them all with one wildcard subscription at the run's QoS. Optionally the publishers are registered
/// devices publishing telemetry (Fieldline acknowledges those after the telemetry store's write), and the
/// subscriber's session outlives its connection (a broker with a state store then keeps each message durably
/// before acknowledging it).
/// </summary>
internal static class FanIn
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var target = new BrokerTarget(o);
        var publisherCount = Opt.Int(o, "publishers", 10);
        var perPublisher = Opt.Int(o, "messages", 200_000) / publisherCount;
        var total = perPublisher * publisherCount;
        var qos = (byte)Opt.Int(o, "qos", 0);
        var persistent = Opt.Int(o, "persistent-subscriber", 0) != 0;
        var devicesUrl = o.GetValueOrDefault("devices-url");
        var label = Opt.Get(o, "label", "fanin");
        using var stop = new CancellationTokenSource();
        var payload = new PayloadTemplate(target.PayloadSize);
        var first = BrokerTarget.TimestampBase(total);

        // Publishers: operator/anonymous clients on bench topics, or devices on their telemetry topics.
        string[] topics;
        MqttWireOptions[] publisherOptions;
        string filter;
        if (devicesUrl is not null)
        {
            var devices = await DeviceRegistration.RegisterAsync(new Uri(devicesUrl), Opt.Get(o, "admin-key"), target.RunId, publisherCount);
            topics = [.. devices.Select(d => $"sensor/{d.Id}/telemetry")];
            publisherOptions = [.. devices.Select(d => target.Client(d.Id, user: d.Id, password: d.Token))];
            filter = "sensor/+/telemetry";
        }
        else
        {
            topics = [.. Enumerable.Range(0, publisherCount).Select(i => $"bench/{target.RunId}/fanin/{i}")];
            publisherOptions = [.. Enumerable.Range(0, publisherCount).Select(i => target.Client($"{target.RunId}-pub-{i}"))];
            filter = $"bench/{target.RunId}/fanin/+";
        }

        var subscriberId = $"{target.RunId}-sub";
        using var subscriberClient = await MqttWireClient.ConnectAsync(
            target.Client(subscriberId, cleanStart: target.Version == 5 || !persistent, sessionExpiry: persistent ? 3600u : 0u), stop.Token);
        await subscriberClient.SubscribeAsync(filter, qos, stop.Token);
        var clients = new List<MqttWireClient>();
        try
        {
            foreach (var options in publisherOptions)
            {
                clients.Add(await MqttWireClient.ConnectAsync(options, stop.Token));
            }

            var window = Math.Min(target.Inflight, clients[0].ServerReceiveMaximum);
            Console.WriteLine($"{target.Name} {label} qos{qos}: {publisherCount} publishers x {perPublisher} = {total} messages of {payload.Length} bytes -> 1 subscriber{(persistent ? " (persistent session)" : "")}, MQTT {(target.Version == 5 ? "5.0" : "3.1.1")}, publisher window {(qos == 0 ? "-" : window)}");
            var subscriber = new Subscriber(subscriberClient, first, total);
            var publishers = clients.Select((c, i) => new Publisher(c, topics[i], qos, target.Inflight, payload, first + ((long)i * perPublisher), perPublisher)).ToArray();
            var cpu = CpuSample.Take(target.BrokerPid);
            var start = Stopwatch.GetTimestamp();
            var receiving = subscriber.RunAsync(stop.Token);
            var publishing = Task.WhenAll(publishers.Select(p => Task.Run(() => p.RunAsync(stop.Token))));
            var complete = await RunControl.WaitAsync(target, [subscriber], publishing, start, stop);
            await receiving;
            var (brokerCpu, loadCpu) = CpuSample.Since(cpu, target.BrokerPid, target.ClockTicks);
            var publishError = await Settle(publishing);

            var delivered = subscriber.Received;
            var seconds = RunControl.Seconds(start, subscriber.LastAt);
            var publishSeconds = publishers.All(p => p.FinishedAt != 0) ? RunControl.Seconds(start, publishers.Max(p => p.FinishedAt)) : double.NaN;
            var acknowledged = qos == 0 ? publishers.Sum(p => (long)p.Written) : publishers.Sum(p => (long)p.Acknowledged);
            var refused = publishers.Sum(p => p.Refused);
            Console.WriteLine($"  delivered {delivered}/{total} in {Opt.F(seconds, "F3")} s = {Opt.F(RunControl.PerSecond(delivered, seconds))} msg/s; publishers {(qos == 0 ? "wrote" : "had acknowledged")} {acknowledged} in {Opt.F(publishSeconds, "F3")} s = {Opt.F(RunControl.PerSecond(acknowledged, publishSeconds))} msg/s; broker CPU {Opt.F(RunControl.MicrosPer(brokerCpu, delivered), "F2")} us/msg, load generator CPU {Opt.F(RunControl.MicrosPer(loadCpu, delivered), "F2")} us/msg{(complete ? "" : "; INCOMPLETE")}{(publishError is null ? "" : $"; publisher error: {publishError}")}");
            RunControl.Result(
                ("workload", label), ("broker", target.Name), ("qos", qos), ("publishers", publisherCount), ("subscribers", 1),
                ("expected", total), ("delivered", delivered), ("lost", total - delivered), ("duplicates", subscriber.Duplicates), ("foreign", subscriber.Foreign),
                ("seconds", seconds), ("delivered_per_s", RunControl.PerSecond(delivered, seconds)),
                ("publish_seconds", publishSeconds), ("publish_per_s", RunControl.PerSecond(acknowledged, publishSeconds)), ("refused", refused),
                ("broker_cpu_us", RunControl.MicrosPer(brokerCpu, delivered)), ("load_cpu_us", RunControl.MicrosPer(loadCpu, delivered)),
                ("complete", complete && publishError is null && refused == 0 ? 1 : 0));

            if (persistent)
            {
                subscriberClient.Dispose();
                await EndSessionAsync(target, subscriberId);
            }

            return complete && publishError is null && refused == 0 && delivered == total ? 0 : 1;
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>Ends a persistent session: a clean start with no expiry replaces it, and the disconnection ends that.</summary>
    public static async Task EndSessionAsync(BrokerTarget target, string clientId)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = await MqttWireClient.ConnectAsync(target.Client(clientId), timeout.Token);
        await client.DisconnectAsync(timeout.Token);
    }

    /// <summary>Waits for the publishers after the run; returns the first error, if any.</summary>
    public static async Task<string?> Settle(Task publishing)
    {
        try
        {
            await publishing.WaitAsync(TimeSpan.FromSeconds(10));
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return ex is TimeoutException ? "still publishing 10 s after the run ended" : ex.GetBaseException().Message;
        }
    }
}

/// <summary>
/// Fan-out: one publisher, many subscribers of the same topic at the run's QoS. Delivered per second counts
/// every copy received by every subscriber; the publisher's rate counts messages written (QoS 0) or acknowledged.
/// </summary>
internal static class FanOut
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var target = new BrokerTarget(o);
        var subscriberCount = Opt.Int(o, "subscribers", 100);
        var messages = Opt.Int(o, "messages", 10_000);
        var qos = (byte)Opt.Int(o, "qos", 0);
        using var stop = new CancellationTokenSource();
        var payload = new PayloadTemplate(target.PayloadSize);
        var first = BrokerTarget.TimestampBase(messages);
        var topic = $"bench/{target.RunId}/fanout";
        var clients = new List<MqttWireClient>();
        try
        {
            var subscribers = new Subscriber[subscriberCount];
            for (var i = 0; i < subscriberCount; i++)
            {
                var client = await MqttWireClient.ConnectAsync(target.Client($"{target.RunId}-sub-{i}"), stop.Token, bufferSize: 64 * 1024);
                clients.Add(client);
                await client.SubscribeAsync(topic, qos, stop.Token);
                subscribers[i] = new Subscriber(client, first, messages);
            }

            var publisherClient = await MqttWireClient.ConnectAsync(target.Client($"{target.RunId}-pub"), stop.Token);
            clients.Add(publisherClient);
            var window = Math.Min(target.Inflight, publisherClient.ServerReceiveMaximum);
            Console.WriteLine($"{target.Name} fanout qos{qos}: 1 publisher x {messages} messages of {payload.Length} bytes -> {subscriberCount} subscribers = {(long)messages * subscriberCount} deliveries, MQTT {(target.Version == 5 ? "5.0" : "3.1.1")}, publisher window {(qos == 0 ? "-" : window)}");
            var publisher = new Publisher(publisherClient, topic, qos, target.Inflight, payload, first, messages);
            var cpu = CpuSample.Take(target.BrokerPid);
            var start = Stopwatch.GetTimestamp();
            var receiving = Task.WhenAll(subscribers.Select(s => Task.Run(() => s.RunAsync(stop.Token))));
            var publishing = Task.Run(() => publisher.RunAsync(stop.Token));
            var complete = await RunControl.WaitAsync(target, subscribers, publishing, start, stop);
            await receiving;
            var (brokerCpu, loadCpu) = CpuSample.Since(cpu, target.BrokerPid, target.ClockTicks);
            var publishError = await FanIn.Settle(publishing);

            long expected = (long)messages * subscriberCount;
            var delivered = subscribers.Sum(s => (long)s.Received);
            var seconds = RunControl.Seconds(start, subscribers.Max(s => s.LastAt));
            var publishSeconds = RunControl.Seconds(start, publisher.FinishedAt);
            var published = qos == 0 ? publisher.Written : publisher.Acknowledged;
            Console.WriteLine($"  delivered {delivered}/{expected} in {Opt.F(seconds, "F3")} s = {Opt.F(RunControl.PerSecond(delivered, seconds))} deliveries/s; publisher {(qos == 0 ? "wrote" : "had acknowledged")} {published} in {Opt.F(publishSeconds, "F3")} s = {Opt.F(RunControl.PerSecond(published, publishSeconds))} msg/s; broker CPU {Opt.F(RunControl.MicrosPer(brokerCpu, delivered), "F2")} us/delivery, load generator CPU {Opt.F(RunControl.MicrosPer(loadCpu, delivered), "F2")} us/delivery{(complete ? "" : "; INCOMPLETE")}{(publishError is null ? "" : $"; publisher error: {publishError}")}");
            RunControl.Result(
                ("workload", "fanout"), ("broker", target.Name), ("qos", qos), ("publishers", 1), ("subscribers", subscriberCount),
                ("expected", expected), ("delivered", delivered), ("lost", expected - delivered), ("duplicates", subscribers.Sum(s => s.Duplicates)), ("foreign", subscribers.Sum(s => s.Foreign)),
                ("seconds", seconds), ("delivered_per_s", RunControl.PerSecond(delivered, seconds)),
                ("publish_seconds", publishSeconds), ("publish_per_s", RunControl.PerSecond(published, publishSeconds)), ("refused", publisher.Refused),
                ("broker_cpu_us", RunControl.MicrosPer(brokerCpu, delivered)), ("load_cpu_us", RunControl.MicrosPer(loadCpu, delivered)),
                ("complete", complete && publishError is null && publisher.Refused == 0 ? 1 : 0));
            return complete && publishError is null && publisher.Refused == 0 && delivered == expected ? 0 : 1;
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}

/// <summary>
/// Durable persistent session: a subscriber with a session that outlives its connection subscribes at QoS 1 and
/// goes offline; one publisher sends N QoS 1 messages, which the broker must keep for it (publish rate = messages
/// acknowledged per second); then the subscriber resumes its session and drains them (drain rate = messages
/// received per second, from its CONNECT to the last message).
/// </summary>
internal static class DurableSession
{
    public static async Task<int> RunAsync(Dictionary<string, string> o)
    {
        var target = new BrokerTarget(o);
        var messages = Opt.Int(o, "messages", 50_000);
        var store = Opt.Get(o, "store", "unknown");
        using var stop = new CancellationTokenSource();
        var payload = new PayloadTemplate(target.PayloadSize);
        var first = BrokerTarget.TimestampBase(messages);
        var topic = $"bench/{target.RunId}/durable";
        var subscriberId = $"{target.RunId}-durable-sub";

        // 3.1.1: Clean Session 0 keeps the session; 5.0: a Session Expiry Interval does (Clean Start may stay set).
        var persistent = target.Client(subscriberId, cleanStart: target.Version == 5, sessionExpiry: 3600);
        using (var subscribing = await MqttWireClient.ConnectAsync(persistent, stop.Token))
        {
            await subscribing.SubscribeAsync(topic, 1, stop.Token);
            await subscribing.DisconnectAsync(stop.Token);
        }

        Console.WriteLine($"{target.Name} durable: persistent subscriber offline, 1 publisher x {messages} QoS 1 messages of {payload.Length} bytes, then the subscriber resumes and drains them; MQTT {(target.Version == 5 ? "5.0" : "3.1.1")}; state store: {store}");
        long publishStart;
        Publisher publisher;
        var cpu = CpuSample.Take(target.BrokerPid);
        using (var publisherClient = await MqttWireClient.ConnectAsync(target.Client($"{target.RunId}-durable-pub"), stop.Token))
        {
            publisher = new Publisher(publisherClient, topic, 1, target.Inflight, payload, first, messages);
            Console.WriteLine($"  publisher window {Math.Min(target.Inflight, publisherClient.ServerReceiveMaximum)}");
            publishStart = Stopwatch.GetTimestamp();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            timeout.CancelAfter(target.Timeout);
            await publisher.RunAsync(timeout.Token);
            await publisherClient.DisconnectAsync(stop.Token);
        }

        var (publishCpu, publishLoadCpu) = CpuSample.Since(cpu, target.BrokerPid, target.ClockTicks);
        var publishSeconds = RunControl.Seconds(publishStart, publisher.FinishedAt);
        Console.WriteLine($"  publish: {publisher.Acknowledged}/{messages} acknowledged ({publisher.Refused} refused) in {Opt.F(publishSeconds, "F3")} s = {Opt.F(RunControl.PerSecond(publisher.Acknowledged, publishSeconds))} msg/s; broker CPU {Opt.F(RunControl.MicrosPer(publishCpu, messages), "F2")} us/msg");
        RunControl.Result(
            ("workload", "durable-publish"), ("broker", target.Name), ("qos", 1), ("expected", messages), ("delivered", publisher.Acknowledged),
            ("lost", messages - publisher.Acknowledged), ("refused", publisher.Refused), ("seconds", publishSeconds),
            ("delivered_per_s", RunControl.PerSecond(publisher.Acknowledged, publishSeconds)),
            ("broker_cpu_us", RunControl.MicrosPer(publishCpu, messages)), ("load_cpu_us", RunControl.MicrosPer(publishLoadCpu, messages)), ("store", store));

        cpu = CpuSample.Take(target.BrokerPid);
        var drainStart = Stopwatch.GetTimestamp();
        bool complete;
        Subscriber subscriber;
        bool sessionPresent;
        using (var resumed = await MqttWireClient.ConnectAsync(target.Client(subscriberId, cleanStart: false, sessionExpiry: 3600), stop.Token))
        {
            sessionPresent = resumed.SessionPresent;
            subscriber = new Subscriber(resumed, first, publisher.Acknowledged);
            var receiving = subscriber.RunAsync(stop.Token);
            complete = await RunControl.WaitAsync(target, [subscriber], Task.CompletedTask, drainStart, stop);
            await receiving;
        }

        var (drainCpu, drainLoadCpu) = CpuSample.Since(cpu, target.BrokerPid, target.ClockTicks);
        var drainSeconds = RunControl.Seconds(drainStart, subscriber.LastAt);
        Console.WriteLine($"  drain: session present {sessionPresent}, {subscriber.Received}/{publisher.Acknowledged} received ({subscriber.Duplicates} duplicates, {subscriber.Resent} with DUP) in {Opt.F(drainSeconds, "F3")} s = {Opt.F(RunControl.PerSecond(subscriber.Received, drainSeconds))} msg/s; broker CPU {Opt.F(RunControl.MicrosPer(drainCpu, subscriber.Received), "F2")} us/msg{(complete ? "" : "; INCOMPLETE")}");
        RunControl.Result(
            ("workload", "durable-drain"), ("broker", target.Name), ("qos", 1), ("expected", publisher.Acknowledged), ("delivered", subscriber.Received),
            ("lost", publisher.Acknowledged - subscriber.Received), ("duplicates", subscriber.Duplicates), ("session_present", sessionPresent ? 1 : 0),
            ("seconds", drainSeconds), ("delivered_per_s", RunControl.PerSecond(subscriber.Received, drainSeconds)),
            ("broker_cpu_us", RunControl.MicrosPer(drainCpu, subscriber.Received)), ("load_cpu_us", RunControl.MicrosPer(drainLoadCpu, subscriber.Received)), ("store", store),
            ("complete", complete && sessionPresent ? 1 : 0));

        await FanIn.EndSessionAsync(target, subscriberId);
        return complete && sessionPresent && publisher.Acknowledged == messages ? 0 : 1;
    }
}
