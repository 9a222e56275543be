#pragma once
/// @file database.hpp
/// One SQLite connection with its cache of prepared statements.
///
/// Thread-safety: a `database` belongs to one thread at a time (the writer
/// thread, or the read-pool thread that owns it). It is movable, not copyable.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chatstream::storage {

/// How a connection is opened.
enum class open_mode
{
    read_write, ///< create if missing; the writer and the CLI
    read_only   ///< read-pool connections
};

/// Durability of a commit. `normal` survives a killed process (WAL is in the
/// OS page cache); `full` also survives power loss at the cost of an fsync
/// per group commit.
enum class sync_mode
{
    off,
    normal,
    full
};

struct database_options
{
    sync_mode sync = sync_mode::normal;
    int busy_timeout_ms = 5000;
    /// Cap on the database size in pages (0 = unlimited): lets tests make
    /// "disk full" (SQLITE_FULL) happen on demand.
    long long max_page_count = 0;
};

/// RAII SQLite connection in WAL mode with foreign keys on and a statement
/// cache keyed by SQL text (userver `prepared_`-style).
class database
{
public:
    /// Opens @p path (a file path; parent directories must exist).
    /// @throws SQLite::Exception when the file cannot be opened or configured.
    database(std::string const& path, open_mode mode, database_options const& options = {});

    database(database&&) noexcept;
    database& operator=(database&&) noexcept;
    ~database();

    /// The cached prepared statement for @p sql, reset and with cleared
    /// bindings, ready to bind. The reference stays valid for the life of
    /// the connection; do not hold it across another `prepare` of the same SQL.
    SQLite::Statement& prepare(std::string const& sql);

    /// Runs one or more statements without results.
    /// @throws SQLite::Exception
    void exec(std::string const& sql);

    /// Like exec, but returns false instead of throwing.
    bool try_exec(std::string const& sql) noexcept;

    /// True when table @p table has column @p column. Cached until the
    /// schema changes (checked through `PRAGMA schema_version`, which is
    /// cheaper than `pragma_table_info` on every write of the hot path).
    bool has_column(std::string const& table, std::string const& column);
    bool has_table(std::string const& table);

    SQLite::Database& raw() noexcept { return *db_; }
    std::string const& path() const noexcept { return path_; }

private:
    std::string path_;
    std::unique_ptr<SQLite::Database> db_;
    std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
    std::unordered_map<std::string, bool> column_cache_;
    long long column_cache_version_ = -1;
};

/// Scoped transaction. Begins on construction (IMMEDIATE when asked, which the
/// writer uses so lock upgrades never deadlock), rolls back in the destructor
/// unless committed, and never throws from the destructor.
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

    /// @throws SQLite::Exception when COMMIT fails (e.g. SQLITE_FULL).
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

/// Optional text column helper: NULL becomes std::nullopt.
} // namespace chatstream::storage
