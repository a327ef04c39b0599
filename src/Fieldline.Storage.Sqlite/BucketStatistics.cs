namespace Fieldline.Storage.Sqlite;

/// <summary>Running statistics of one aggregate bucket.</summary>
internal struct BucketStatistics
{
    // The mean comes from the plain sum (exact for typical sensor values); the variance uses Welford's update,
    // which avoids the cancellation of sum-of-squares when values are large and close together.
    private double sum;
    private double welfordMean;
    private double m2;

    public long Count { get; private set; }

    public double Min { get; private set; }

    public double Max { get; private set; }

    public readonly double Mean => sum / Count;

    public readonly double PopulationStdDev => Count == 0 ? 0 : Math.Sqrt(m2 / Count);

    public void Add(double value)
    {
        if (Count == 0)
        {
            Min = value;
            Max = value;
        }
        else
        {
            Min = Math.Min(Min, value);
            Max = Math.Max(Max, value);
        }

        Count++;
        sum += value;
        var delta = value - welfordMean;
        welfordMean += delta / Count;
        m2 += delta * (value - welfordMean);
    }
}
