using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Fieldline.Core.Devices;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// The cursor of a device listing: in id order the last device_id itself (as the API has always returned), in the
/// other orders the last row's sort key and device_id, base64url-encoded so that a name of any characters survives
/// a query string.
/// </summary>
internal static class DeviceCursor
{
    private const char Separator = '\u001f';

    public static string Encode(Device last, DeviceOrder order) => order switch
    {
        DeviceOrder.Name => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(last.Name + Separator + last.DeviceId)),
        DeviceOrder.LastSeen => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(
            (last.LastSeen?.ToUnixTimeMilliseconds() ?? -1).ToString(CultureInfo.InvariantCulture) + Separator + last.DeviceId)),
        _ => last.DeviceId,
    };

    /// <summary>The sort key and device_id a cursor of <paramref name="order"/> holds; <see cref="FormatException"/> when it holds none.</summary>
    public static (object Key, string DeviceId) Decode(string cursor, DeviceOrder order)
    {
        string text;
        try
        {
            text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
        }
        catch (FormatException)
        {
            throw new FormatException("The cursor was not returned by a device listing in this order.");
        }

        var split = text.LastIndexOf(Separator);
        if (split < 0)
        {
            throw new FormatException("The cursor was not returned by a device listing in this order.");
        }

        var key = text[..split];
        var deviceId = text[(split + 1)..];
        if (order == DeviceOrder.LastSeen)
        {
            if (!long.TryParse(key, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var lastSeen))
            {
                throw new FormatException("The cursor was not returned by a device listing in this order.");
            }

            return (lastSeen, deviceId);
        }

        return (key, deviceId);
    }
}
