using BenchmarkDotNet.Running;

namespace Fieldline.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/Fieldline.Benchmarks -- --filter '*'</c>.</summary>
public static class BenchmarkProgram
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
}
