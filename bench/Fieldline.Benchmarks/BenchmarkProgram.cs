using BenchmarkDotNet.Running;

namespace Fieldline.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Fieldline.Benchmarks -- --filter '*'</c>, or
/// <c>-- store-load [points]</c> for the SQLite store's append throughput, or
/// <c>-- mqtt-store-load [operations per appender] [appenders]</c> for the broker state store's change throughput.
/// </summary>
public static class BenchmarkProgram
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "store-load")
        {
            return await StoreLoad.RunAsync(args);
        }

        if (args.Length > 0 && args[0] == "mqtt-store-load")
        {
            return await MqttStoreLoad.RunAsync(args);
        }

        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
        return 0;
    }
}
