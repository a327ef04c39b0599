using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Fieldline.Tests.Infrastructure;

/// <summary>Keeps every log entry of a host so that a test can fail when the server logged an error.</summary>
internal sealed class RecordingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly ConcurrentQueue<Func<LogEntry, bool>> _expected = new();

    public IReadOnlyCollection<LogEntry> Entries => _entries;

    /// <summary>Errors that match <paramref name="expected"/> are what the test provokes: they do not fail it.</summary>
    public void Expect(Func<LogEntry, bool> expected) => _expected.Enqueue(expected);

    public bool IsExpected(LogEntry entry) => _expected.Any(e => e(entry));

    public ILogger CreateLogger(string categoryName) => new RecordingLogger(categoryName, _entries);

    public void Dispose()
    {
    }

    internal sealed record LogEntry(LogLevel Level, string Category, string Message, Exception? Exception)
    {
        public override string ToString() => $"{Level} {Category}: {Message}{(Exception is null ? "" : Environment.NewLine + Exception)}";
    }

    private sealed class RecordingLogger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            entries.Enqueue(new LogEntry(logLevel, category, formatter(state, exception), exception));
    }
}
