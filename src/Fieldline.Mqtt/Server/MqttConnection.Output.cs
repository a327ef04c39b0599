using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Fieldline.Mqtt.Protocol;

namespace Fieldline.Mqtt.Server;

/// <summary>The connection's output: writes from many threads, one flush at a time, and ordered acknowledgements.</summary>
/// <remarks>
/// Design note. Any connection's read loop may write into this client's output (that is how a PUBLISH is
/// routed), so writes take a lock and go straight into the pipe with GetSpan/Advance. Flushing is decoupled:
/// the first write after a flush queues one work item, which flushes everything written until then; a burst of
/// messages costs one flush. A PipeWriter allows one flush at a time, so while a flush is pending (the socket
/// is slower than the writers) the connection reports <see cref="IsBackedUp"/>, and publishers wait on
/// <see cref="WhenDrained"/> rather than pile more bytes in.
/// </remarks>
internal sealed partial class MqttConnection : IThreadPoolWorkItem
{
    private readonly PipeWriter _output;
    private readonly Lock _writeLock = new();
    private readonly Action _onFlushCompleted;
    private readonly Lock _ackLock = new();
    private readonly Queue<PendingAck> _pendingAcks = new();
    private bool _ackPumpRunning;
    private TaskCompletionSource? _ackProgress;
    private bool _unflushed;
    private bool _flushScheduled;
    private bool _outputClosed;
    private volatile bool _backedUp;
    private TaskCompletionSource? _drained;
    private ValueTask<FlushResult> _pendingFlush;
    private uint _clientMaximumPacketSize;
    private Dictionary<byte[], ushort>? _outboundAliases;
    private ushort _outboundAliasLimit;

    /// <summary>True while a flush waits for the socket: the client reads slower than it is sent to.</summary>
    public bool IsBackedUp => _backedUp;

    private int PendingAcknowledgements
    {
        get
        {
            lock (_ackLock)
            {
                return _pendingAcks.Count;
            }
        }
    }

    /// <summary>
    /// Writes a PUBLISH to this client. Called from any thread. False when the client cannot take the message's
    /// size, so that it is discarded for this client; a closed connection returns true, since a persistent
    /// session keeps the message in flight for the next connection.
    /// </summary>
    public bool SendPublish(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> properties, byte qos, bool retain, bool dup, ushort packetId, in MqttPublishExtras extras = default)
    {
        int size;
        lock (_writeLock)
        {
            if (_outputClosed)
            {
                return true;
            }

            var packetExtras = extras;
            if (Version == MqttProtocolVersion.V500 && _outboundAliases is not null)
            {
                // Chosen under the write lock: an alias must be set on the wire before a packet that only refers to it.
                packetExtras = ApplyOutboundAlias(topic, extras);
            }

            var propertiesLength = Version == MqttProtocolVersion.V500 ? properties.Length + packetExtras.Length : 0;
            size = MqttPacketEncoder.PublishSize(Version, packetExtras.OmitTopic ? 0 : topic.Length, payload.Length, qos, propertiesLength);
            if (_clientMaximumPacketSize != 0 && size > _clientMaximumPacketSize)
            {
                // MQTT-3.1.2-25: a message larger than the client's Maximum Packet Size is discarded for that client.
                _broker.Metrics.Dropped("packet_too_large_for_client");
                return false;
            }

            MqttPacketEncoder.WritePublish(_output, Version, topic, payload, qos, retain, dup, packetId, properties, packetExtras);
            ScheduleFlushLocked();
        }

        _broker.Metrics.MessageSent(size);
        return true;
    }

    /// <summary>Sends PUBREL for a QoS 2 delivery whose PUBREC arrived (or again on resume).</summary>
    public void SendPubRel(ushort packetId) => WriteAck(MqttPacketType.PubRel, packetId, MqttReasonCode.Success);

    /// <summary>
    /// Uses a topic alias towards a client that accepts them: the first message on a topic sets an alias (topic and
    /// alias both sent), later ones send the alias alone. Aliases are given out until the client's maximum is
    /// reached; after that, topics without one go in full.
    /// </summary>
    private MqttPublishExtras ApplyOutboundAlias(ReadOnlySpan<byte> topic, in MqttPublishExtras extras)
    {
        var lookup = _outboundAliases!.GetAlternateLookup<ReadOnlySpan<byte>>();
        if (lookup.TryGetValue(topic, out var alias))
        {
            return extras.WithTopicAlias(alias, omitTopic: true);
        }

        if (_outboundAliases.Count >= _outboundAliasLimit)
        {
            return extras;
        }

        alias = (ushort)(_outboundAliases.Count + 1);
        _outboundAliases[topic.ToArray()] = alias;
        return extras.WithTopicAlias(alias, omitTopic: false);
    }

    /// <summary>
    /// Completes when this client takes messages again: its pending flush has finished and its QoS 1 queue is
    /// below the low-water mark (at once when neither is behind).
    /// </summary>
    public Task WhenDrained()
    {
        var pipe = WhenFlushed();
        var queue = Session?.WhenUncongested(Options.QueueHighWaterMark) ?? Task.CompletedTask;
        return pipe.IsCompleted ? queue : queue.IsCompleted ? pipe : Task.WhenAll(pipe, queue);
    }

    private Task WhenFlushed()
    {
        lock (_writeLock)
        {
            if (!_backedUp || _outputClosed)
            {
                return Task.CompletedTask;
            }

            return (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    void IThreadPoolWorkItem.Execute() => FlushLoop();

    /// <summary>
    /// Acknowledges an inbound PUBLISH (PUBACK for QoS 1, PUBREC for QoS 2) in the order the PUBLISH packets arrived
    /// (MQTT-4.6.0-2), after <paramref name="completion"/> when there is one. QoS 0 entries with a completion
    /// write nothing but count against the receive window, which is how the store slows down a QoS 0 publisher.
    /// </summary>
    private void Acknowledge(ushort packetId, byte qos, MqttReasonCode reason, Task? completion, Task? durable = null, Action? deferred = null)
    {
        lock (_ackLock)
        {
            if (_pendingAcks.Count == 0 && (completion is null || completion.IsCompletedSuccessfully) && (durable is null || durable.IsCompletedSuccessfully))
            {
                if (deferred is not null)
                {
                    deferred();
                }
                else if (qos > 0)
                {
                    WriteAck(qos == 2 ? MqttPacketType.PubRec : MqttPacketType.PubAck, packetId, reason);
                }

                return;
            }

            _pendingAcks.Enqueue(new PendingAck(packetId, qos, reason, completion, durable, deferred));
            if (_ackPumpRunning)
            {
                return;
            }

            _ackPumpRunning = true;
        }

        _ = PumpAcknowledgementsAsync();
    }

    private async Task PumpAcknowledgementsAsync()
    {
        while (true)
        {
            PendingAck head;
            lock (_ackLock)
            {
                if (_pendingAcks.Count == 0)
                {
                    _ackPumpRunning = false;
                    SignalAckProgressLocked();
                    return;
                }

                head = _pendingAcks.Peek();
            }

            // Failures are inspected below through the tasks' states.
            if (head.Completion is { IsCompleted: false } completion)
            {
                await completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            if (head.Durable is { IsCompleted: false } durable)
            {
                await durable.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            // The acknowledgement is written before the entry leaves the queue: until then a PUBLISH handled
            // meanwhile queues behind it, and the read loop (waiting for progress) cannot write ahead of it.
            var failed = head.Completion is { IsCompletedSuccessfully: false } ? head.Completion : head.Durable is { IsCompletedSuccessfully: false } ? head.Durable : null;
            if (head.Deferred is { } deferred)
            {
                if (failed is not null)
                {
                    // SUBSCRIBE or UNSUBSCRIBE whose change could not be made durable: no acknowledgement, so the
                    // client does not believe in a subscription that a restart would lose.
                    Log.CompletionFailed(_broker.Logger, Client?.ClientId ?? "?", failed.Exception?.GetBaseException() ?? new OperationCanceledException());
                    Close(MqttReasonCode.ImplementationSpecificError, MqttDisconnectKind.ServerInitiated);
                }
                else
                {
                    deferred();
                }
            }
            else if (failed is not null)
            {
                Log.CompletionFailed(_broker.Logger, Client?.ClientId ?? "?", failed.Exception?.GetBaseException() ?? new OperationCanceledException());
                if (head.Qos == 2)
                {
                    // Not accepted, so not received: a later PUBLISH with this packet id is a new message.
                    Session?.ReleaseIncomingQos2(head.PacketId);
                }

                if (head.Qos > 0)
                {
                    if (Version == MqttProtocolVersion.V500)
                    {
                        WriteAck(head.Qos == 2 ? MqttPacketType.PubRec : MqttPacketType.PubAck, head.PacketId, MqttReasonCode.ImplementationSpecificError);
                    }
                    else
                    {
                        // 3.1.1 cannot refuse a message: close without acknowledging, so the client sends it again.
                        Close(MqttReasonCode.ImplementationSpecificError, MqttDisconnectKind.ServerInitiated);
                    }
                }
            }
            else if (head.Qos > 0)
            {
                WriteAck(head.Qos == 2 ? MqttPacketType.PubRec : MqttPacketType.PubAck, head.PacketId, head.Reason);
            }

            lock (_ackLock)
            {
                _pendingAcks.Dequeue();
                SignalAckProgressLocked();
            }
        }
    }

    private Task WhenAcknowledgementsProgress()
    {
        lock (_ackLock)
        {
            if (_pendingAcks.Count < Options.ReceiveMaximum)
            {
                return Task.CompletedTask;
            }

            return (_ackProgress ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    private void SignalAckProgressLocked()
    {
        if (_ackProgress is { } progress)
        {
            _ackProgress = null;
            progress.TrySetResult();
        }
    }

    private void WriteAck(MqttPacketType type, ushort packetId, MqttReasonCode reason)
    {
        if (Write((type, packetId, reason), static (output, connection, s) => MqttPacketEncoder.WriteAck(output, s.type, s.packetId, connection.Version, s.reason)))
        {
            _broker.Metrics.PacketSent(4);
        }
    }

    private void WriteConnAck(bool sessionPresent, MqttReasonCode reason, string? assignedClientId, ushort serverKeepAlive = 0, string? reasonString = null) =>
        Write(
            (sessionPresent, reason, assignedClientId, serverKeepAlive, reasonString),
            static (output, connection, s) => MqttPacketEncoder.WriteConnAck(
                output,
                connection.Version,
                s.sessionPresent,
                s.reason,
                s.assignedClientId,
                new MqttServerCapabilities((uint)connection.Options.MaximumPacketSize, connection.Options.ReceiveMaximum, s.serverKeepAlive, connection.Options.TopicAliasMaximum),
                s.reasonString));

    private void WriteAuth(MqttReasonCode reason, string method, byte[]? data) =>
        Write((reason, method, data), static (output, _, s) => MqttPacketEncoder.WriteAuth(output, s.reason, s.method, s.data));

    private void WriteSubAck(ushort packetId, MqttReasonCode[] reasons) =>
        Write((packetId, reasons), static (output, connection, s) => MqttPacketEncoder.WriteSubAck(output, connection.Version, s.packetId, s.reasons));

    private void WriteUnsubAck(ushort packetId, MqttReasonCode[] reasons) =>
        Write((packetId, reasons), static (output, connection, s) => MqttPacketEncoder.WriteUnsubAck(output, connection.Version, s.packetId, s.reasons));

    private void WritePingResp() => Write(0, static (output, _, _) => MqttPacketEncoder.WritePingResp(output));

    private void WriteDisconnect(MqttReasonCode reason, string? reasonString) =>
        Write((reason, reasonString), static (output, _, s) => MqttPacketEncoder.WriteDisconnect(output, s.reason, s.reasonString));

    /// <summary>
    /// Writes one control packet under the write lock unless the output is closed. The encoders are static
    /// lambdas with their arguments in a value-type state, so a write allocates nothing.
    /// </summary>
    private bool Write<TState>(TState state, Action<PipeWriter, MqttConnection, TState> encode)
    {
        lock (_writeLock)
        {
            if (_outputClosed)
            {
                return false;
            }

            encode(_output, this, state);
            ScheduleFlushLocked();
            return true;
        }
    }

    private void ScheduleFlushLocked()
    {
        _unflushed = true;
        if (!_flushScheduled)
        {
            _flushScheduled = true;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
        }
    }

    private void FlushLoop()
    {
        while (true)
        {
            lock (_writeLock)
            {
                if (!_unflushed || _outputClosed)
                {
                    _flushScheduled = false;
                    return;
                }

                _unflushed = false;

                // Stored, not awaited, so that a pending flush resumes through a cached delegate (no state machine);
                // it is consumed exactly once, in CompleteFlush.
                try
                {
#pragma warning disable CA2012
                    _pendingFlush = _output.FlushAsync();
#pragma warning restore CA2012
                }
                catch (Exception)
                {
                    // The transport failed (it can throw synchronously); this runs on a thread-pool work item,
                    // where an exception would end the process.
                    _pendingFlush = default;
                    _outputClosed = true;
                    _flushScheduled = false;
                    _backedUp = false;
                    _drained?.TrySetResult();
                    _drained = null;
                    return;
                }
            }

            if (!_pendingFlush.IsCompleted)
            {
                // The socket is behind: resume on completion without blocking a thread and without allocating.
                _backedUp = true;
                _pendingFlush.GetAwaiter().UnsafeOnCompleted(_onFlushCompleted);
                return;
            }

            if (!CompleteFlush())
            {
                return;
            }
        }
    }

    private void OnFlushCompleted()
    {
        if (CompleteFlush())
        {
            FlushLoop();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool CompleteFlush()
    {
        bool completed;
        try
        {
            var result = _pendingFlush.GetAwaiter().GetResult();
            completed = result.IsCompleted || result.IsCanceled;
        }
        catch (Exception)
        {
            completed = true;
        }

        _pendingFlush = default;
        if (completed)
        {
            CloseOutput();
            return false;
        }

        if (_backedUp)
        {
            TaskCompletionSource? drained;
            lock (_writeLock)
            {
                _backedUp = false;
                drained = _drained;
                _drained = null;
            }

            drained?.TrySetResult();
        }

        return true;
    }

    private void CloseOutput()
    {
        TaskCompletionSource? drained;
        lock (_writeLock)
        {
            _outputClosed = true;
            _flushScheduled = false;
            _backedUp = false;
            drained = _drained;
            _drained = null;
        }

        drained?.TrySetResult();
    }

    /// <summary>
    /// An acknowledgement waiting for its turn: after <see cref="Completion"/> (the policy's, e.g. the telemetry
    /// store) and <see cref="Durable"/> (the broker's state store). <see cref="Deferred"/>, when set, writes it
    /// instead of PUBACK/PUBREC (SUBACK, UNSUBACK).
    /// </summary>
    private readonly record struct PendingAck(ushort PacketId, byte Qos, MqttReasonCode Reason, Task? Completion, Task? Durable, Action? Deferred);
}
