using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Fieldline.Storage.Sqlite;

/// <summary>
/// A prepared statement driven through SQLite's C API directly, for the statements a writer runs once per
/// message or point. Microsoft.Data.Sqlite's commands box every parameter value and take and release a SafeHandle
/// reference around each of several native calls; here a statement binds spans and integers and allocates
/// nothing per execution. Used on the writer thread only, inside the transaction its connection has open.
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 database;
    private readonly sqlite3_stmt statement;
    private byte[] textBuffer = new byte[256];

    public RawStatement(SqliteConnection connection, string sql)
    {
        database = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");
        var rc = raw.sqlite3_prepare_v2(database, sql, out statement);
        Check(rc);
    }

    public void Bind(int index, long value) => Check(raw.sqlite3_bind_int64(statement, index, value));

    public void Bind(int index, double value) => Check(raw.sqlite3_bind_double(statement, index, value));

    public void BindNull(int index) => Check(raw.sqlite3_bind_null(statement, index));

    /// <summary>Binds a blob; an empty one as NULL (how the store keeps empty payloads and properties).</summary>
    public void BindBlobOrNull(int index, ReadOnlySpan<byte> value) =>
        Check(value.IsEmpty ? raw.sqlite3_bind_null(statement, index) : raw.sqlite3_bind_blob(statement, index, value));

    /// <summary>Binds a string as UTF-8 text through a reused buffer.</summary>
    public void BindText(int index, string value)
    {
        var length = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (length > textBuffer.Length)
        {
            textBuffer = new byte[Math.Max(length, textBuffer.Length * 2)];
        }

        var written = Encoding.UTF8.GetBytes(value, textBuffer);
        Check(raw.sqlite3_bind_text(statement, index, textBuffer.AsSpan(0, written)));
    }

    /// <summary>Runs the statement to completion and makes it ready for the next bindings.</summary>
    public void Execute()
    {
        var rc = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        raw.sqlite3_clear_bindings(statement);
        if (rc != raw.SQLITE_DONE && rc != raw.SQLITE_ROW)
        {
            Throw(rc);
        }
    }

    public void Dispose() => statement.Dispose();

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            Throw(rc);
        }
    }

    private void Throw(int rc) => throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(database).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(database));
}
