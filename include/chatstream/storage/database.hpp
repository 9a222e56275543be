#pragma once
/// @file database.hpp
/// One database connection (SQLite or PostgreSQL) with its cache of prepared
/// statements.
///
/// Repositories are written once, against `statement`, in the SQL both
/// engines accept; `?` and `?N` placeholders are rewritten to `$N` for
/// PostgreSQL. The few places where the dialects differ ask `dialect()`.
/// The method names of `statement` and `column` mirror SQLiteCpp's, so the
/// repositories read like the SQLiteCpp code they started as.
///
/// Thread-safety: a `database` belongs to one thread at a time (the writer
/// thread, or the read-pool thread that owns it). It is movable, not copyable.
#include "chatstream/storage/error.hpp"

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::storage
{

enum class dialect
{
    sqlite,
    postgres
};

/// Whether several chatstream nodes may serve one database of this dialect
/// at once (docs/scaling.md): a PostgreSQL database yes, a SQLite file no.
/// The one place that says which dialect means "clustered".
constexpr bool serves_several_nodes(dialect d) noexcept
{
    return d == dialect::postgres;
}

/// How a connection is opened.
enum class open_mode
{
    read_write, ///< create if missing; the writer and the CLI
    read_only   ///< read-pool connections
};

/// Durability of a commit. `normal` survives a killed process (WAL is in the
/// OS page cache); `full` also survives power loss at the cost of an fsync
/// per group commit. PostgreSQL: `off` maps to synchronous_commit=off, the
/// others to the server's own setting.
enum class sync_mode
{
    off,
    normal,
    full
};

struct database_options
{
    sync_mode sync = sync_mode::normal;
    /// SQLite busy timeout; PostgreSQL lock_timeout. Either way a lock held
    /// longer than this fails the statement with errc::busy.
    int busy_timeout_ms = 5000;
    /// Cap on the database size in pages (0 = unlimited): lets tests make
    /// "disk full" (SQLITE_FULL) happen on demand. SQLite only.
    long long max_page_count = 0;
};

/// Where a database lives: `postgres://…` / `postgresql://…` select
/// PostgreSQL (a libpq connection URI), `sqlite:PATH` or a bare PATH SQLite.
struct database_location
{
    storage::dialect dialect = dialect::sqlite;
    std::string target; ///< SQLite file path, or the libpq URI
};
database_location parse_location(std::string const& location);

/// The one error type out of storage for a failed statement or connection,
/// on every backend: the mapped errc, the backend's message, and the
/// backend's own code (the SQLSTATE on PostgreSQL; the extended result code
/// on SQLite) for diagnostics and retry decisions.
class database_error : public storage_error
{
public:
    database_error(errc code, std::string const& what, std::string sqlstate = {},
                   int native_code = 0)
        : storage_error(code, what), sqlstate_(std::move(sqlstate)), native_code_(native_code)
    {
    }
    /// PostgreSQL's SQLSTATE (empty on SQLite).
    std::string const& sqlstate() const noexcept { return sqlstate_; }
    /// SQLite's extended result code (0 on PostgreSQL).
    int native_code() const noexcept { return native_code_; }

private:
    std::string sqlstate_;
    int native_code_ = 0;
};

class statement;

/// One value of the current row; valid until the statement steps or resets.
class column
{
public:
    column(statement const& s, int index) noexcept : s_(s), index_(index) {}
    bool isNull() const;
    std::int64_t getInt64() const;
    int getInt() const { return static_cast<int>(getInt64()); }
    double getDouble() const;
    std::string getString() const;
    std::string_view getView() const;
    /// NUL-terminated text (valid like getView()).
    char const* getText() const { return getView().data(); }
    int getBytes() const { return static_cast<int>(getView().size()); }

private:
    statement const& s_;
    int index_;
};

/// A prepared statement. Parameters are 1-based like SQLite's.
class statement
{
public:
    virtual ~statement() = default;

    template <std::integral T> void bind(int index, T value)
    {
        bind_int64(index, static_cast<std::int64_t>(value));
    }
    void bind(int index, double value) { bind_double(index, value); }
    void bind(int index, std::string_view value) { bind_text(index, value, true); }
    void bind(int index, std::string const& value) { bind_text(index, value, true); }
    void bind(int index, char const* value) { bind_text(index, value, true); }
    void bind(int index) { bind_null(index); } ///< NULL
    /// Binds without copying: @p value must outlive the next step/exec.
    void bindNoCopy(int index, std::string const& value) { bind_text(index, value, false); }

    /// Runs the statement on first call, then steps through its rows.
    /// @return true while a row is available.
    virtual bool executeStep() = 0;
    /// Runs a statement without result rows. @return rows changed.
    virtual int exec() = 0;
    /// Ready to run again; bindings are kept.
    virtual void reset() = 0;
    virtual void clearBindings() = 0;

    column getColumn(int index) const { return {*this, index}; }
    virtual int getColumnCount() const = 0;

    virtual bool column_is_null(int index) const = 0;
    virtual std::int64_t column_int64(int index) const = 0;
    virtual double column_double(int index) const = 0;
    virtual std::string_view column_text(int index) const = 0;

protected:
    virtual void bind_int64(int index, std::int64_t value) = 0;
    virtual void bind_double(int index, double value) = 0;
    virtual void bind_text(int index, std::string_view value, bool copy) = 0;
    virtual void bind_null(int index) = 0;
};

inline bool column::isNull() const
{
    return s_.column_is_null(index_);
}
inline std::int64_t column::getInt64() const
{
    return s_.column_int64(index_);
}
inline double column::getDouble() const
{
    return s_.column_double(index_);
}
inline std::string_view column::getView() const
{
    return s_.column_text(index_);
}
inline std::string column::getString() const
{
    return std::string(getView());
}

namespace detail
{
class connection; // the backend (storage/detail/connection.hpp)
} // namespace detail

/// RAII connection: SQLite in WAL mode with foreign keys on, or a libpq
/// connection; both with a statement cache keyed by SQL text
/// (userver `prepared_`-style).
class database
{
public:
    /// Opens @p location (see parse_location; SQLite parent directories must exist).
    /// @throws std::exception when the database cannot be opened or configured.
    database(std::string const& location, open_mode mode, database_options const& options = {});

    database(database&&) noexcept;
    database& operator=(database&&) noexcept;
    ~database();

    /// The cached prepared statement for @p sql, reset and with cleared
    /// bindings, ready to bind. The reference stays valid for the life of
    /// the connection; do not hold it across another `prepare` of the same SQL.
    statement& prepare(std::string const& sql);

    /// Runs one or more statements without results.
    void exec(std::string const& sql);

    /// Like exec, but returns false instead of throwing.
    bool try_exec(std::string const& sql) noexcept;

    /// True when table @p table has column @p column (SQLite caches this
    /// until the schema changes; PostgreSQL asks the catalog, since another
    /// node may change the schema).
    bool has_column(std::string const& table, std::string const& column);
    bool has_table(std::string const& table);

    storage::dialect dialect() const noexcept { return dialect_; }
    bool is_postgres() const noexcept { return dialect_ == dialect::postgres; }
    /// The location it was opened with (file path or URI).
    std::string const& location() const noexcept { return location_; }
    /// SQLite file path ("" for PostgreSQL).
    std::string const& path() const noexcept { return path_; }
    /// The backend, for storage's own transaction control.
    detail::connection& backend() noexcept { return *conn_; }

private:
    std::string location_;
    std::string path_;
    storage::dialect dialect_ = dialect::sqlite;
    std::unique_ptr<detail::connection> conn_;
};

/// Scoped transaction. Begins on construction (IMMEDIATE on SQLite when
/// asked, which the writer uses so lock upgrades never deadlock), rolls back
/// in the destructor unless committed, and never throws from the destructor.
class transaction
{
public:
    enum class behavior
    {
        deferred,
        immediate
    };

    explicit transaction(database& db, behavior b = behavior::immediate);
    transaction(transaction const&) = delete;
    transaction& operator=(transaction const&) = delete;
    ~transaction();

    /// @throws when COMMIT fails (e.g. SQLITE_FULL).
    void commit();

private:
    database& db_;
    bool done_ = false;
};

/// Savepoint nested inside a transaction; same rules as `transaction`.
class savepoint
{
public:
    explicit savepoint(database& db, char const* name = "sp");
    savepoint(savepoint const&) = delete;
    savepoint& operator=(savepoint const&) = delete;
    ~savepoint();
    void release();

private:
    database& db_;
    std::string name_;
    bool done_ = false;
};

namespace detail
{
/// `?` / `?N` placeholders to `$N`, outside quotes and comments.
/// @return the rewritten SQL and the number of parameters.
std::pair<std::string, int> to_postgres_placeholders(std::string_view sql);
} // namespace detail

} // namespace chatstream::storage
