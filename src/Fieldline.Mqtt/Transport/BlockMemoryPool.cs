using System.Buffers;
using System.Collections.Concurrent;

namespace Fieldline.Mqtt.Transport;

/// <summary>
/// Fixed-size blocks kept for reuse once returned, for the pipes of transports the broker runs itself. The shared
/// <see cref="MemoryPool{T}"/> caches only a few arrays per core, so a sender that keeps many blocks in a pipe would
/// allocate new ones all the time; here a returned block waits for the next rent. At most
/// <c>maximumRetainedBlocks</c> are kept; blocks beyond are left to the garbage collector.
/// </summary>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    /// <summary>The size of every block: the pipes' default segment size.</summary>
    public const int BlockSize = 4096;

    private readonly ConcurrentQueue<Block> _blocks = new();
    private readonly int _maximumRetainedBlocks;
    private int _retainedBlocks;

    public BlockMemoryPool(int maximumRetainedBlocks) => _maximumRetainedBlocks = maximumRetainedBlocks;

    /// <summary>The pool of the WebSocket transport: keeps up to 64 MiB of blocks.</summary>
    public static BlockMemoryPool WebSockets { get; } = new(maximumRetainedBlocks: 16 * 1024);

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            // Pipes never ask for more than MaxBufferSize; other callers get an unpooled buffer.
            return MemoryPool<byte>.Shared.Rent(minBufferSize);
        }

        if (_blocks.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _retainedBlocks);
            return block;
        }

        return new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
        // Shared and process-wide: blocks still rented return to it whatever happens.
    }

    private void Return(Block block)
    {
        if (Interlocked.Increment(ref _retainedBlocks) <= _maximumRetainedBlocks)
        {
            _blocks.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _retainedBlocks);
        }
    }

    private sealed class Block(BlockMemoryPool pool) : IMemoryOwner<byte>
    {
        // Pinned: the socket below reads into and writes from it without pinning per call.
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => _array;

        public void Dispose() => pool.Return(this);
    }
}
