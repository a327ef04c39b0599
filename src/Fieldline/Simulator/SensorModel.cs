using System.Globalization;
using System.Text;

namespace Fieldline.Simulator;

/// <summary>
/// A plausible sensor: temperature and humidity drift slowly with a daily cycle and noise; vibration has a base
/// level with occasional bursts, as a running machine would show.
/// </summary>
internal sealed class SensorModel
{
    private readonly Random _random;
    private readonly double _baseTemperature;
    private readonly double _baseHumidity;
    private double _drift;

    public SensorModel(int seed)
    {
        _random = new Random(seed);
        _baseTemperature = 18 + (_random.NextDouble() * 8);
        _baseHumidity = 35 + (_random.NextDouble() * 20);
    }

    /// <summary>One message in the seed's multi-value form: <c>{"ts":…,"values":{…}}</c>.</summary>
    public byte[] NextPayload(DateTimeOffset now)
    {
        _drift = Math.Clamp(_drift + ((_random.NextDouble() - 0.5) * 0.05), -2, 2);
        var dayPhase = now.TimeOfDay.TotalHours / 24 * 2 * Math.PI;
        var temperature = _baseTemperature + (2 * Math.Sin(dayPhase)) + _drift + Noise(0.1);
        var humidity = Math.Clamp(_baseHumidity - (3 * Math.Sin(dayPhase)) - _drift + Noise(0.5), 0, 100);
        var vibration = 0.2 + Math.Abs(Noise(0.05)) + (_random.NextDouble() < 0.02 ? 2 + _random.NextDouble() : 0);
        var json = string.Create(
            CultureInfo.InvariantCulture,
            $"{{\"ts\":{now.ToUnixTimeMilliseconds()},\"values\":{{\"temperature\":{temperature:F2},\"humidity\":{humidity:F1},\"vibration\":{vibration:F3}}}}}");
        return Encoding.UTF8.GetBytes(json);
    }

    private double Noise(double scale)
    {
        // Box-Muller: normal noise looks like a sensor's, uniform noise does not.
        var u1 = 1.0 - _random.NextDouble();
        var u2 = _random.NextDouble();
        return scale * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Sin(2.0 * Math.PI * u2);
    }
}
