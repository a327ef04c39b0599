using System.Buffers.Binary;
using System.Buffers.Text;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// The opaque paging cursor of raw queries: the timestamp of the last point returned and how many points with
/// exactly that timestamp were returned so far, so pages split inside a run of equal timestamps continue correctly.
/// </summary>
internal readonly record struct RawCursor(long TimestampMs, int SeenAtTimestamp)
{
    private const int Length = 12;

    public string Encode()
    {
        Span<byte> bytes = stackalloc byte[Length];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, TimestampMs);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], SeenAtTimestamp);
        return Base64Url.EncodeToString(bytes);
    }

    /// <exception cref="ArgumentException">The cursor was not produced by this store.</exception>
    public static RawCursor Decode(string cursor)
    {
        Span<byte> bytes = stackalloc byte[Length + 3];
        int written;
        try
        {
            if (cursor.Length > 24 || !Base64Url.TryDecodeFromChars(cursor, bytes, out written) || written != Length)
            {
                throw new ArgumentException("The cursor is not valid.", nameof(cursor));
            }
        }
        catch (FormatException ex)
        {
            throw new ArgumentException("The cursor is not valid.", nameof(cursor), ex);
        }

        var result = new RawCursor(BinaryPrimitives.ReadInt64LittleEndian(bytes), BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]));
        // The store never issues more than one page's worth of points at one timestamp; a larger count is forged.
        return result.SeenAtTimestamp is < 0 or > 1_000_000 ? throw new ArgumentException("The cursor is not valid.", nameof(cursor)) : result;
    }
}
