// SQLite backend of storage::database, on SQLiteCpp.
#include "chatstream/storage/database.hpp"

#include "detail/connection.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <unordered_map>

namespace chatstream::storage::detail
{
namespace
{

// SQLite failures leave storage as database_error, like PostgreSQL's, so
// callers catch one type (issue 18).
[[noreturn]] void throw_sqlite(sqlite3* db, int rc)
{
    int const extended = db ? sqlite3_extended_errcode(db) : rc;
    int const code = (extended & 0xff) == (rc & 0xff) ? extended : rc;
    throw database_error(from_sqlite(code), db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), {}, code);
}

// SQLiteCpp (Database's constructor and exec) throws its own type.
template <class F> auto translated(F&& f) -> decltype(f())
{
    try
    {
        return f();
    }
    catch (SQLite::Exception const& e)
    {
        throw database_error(from_sqlite(e.getExtendedErrorCode()), e.what(), {},
                             e.getExtendedErrorCode());
    }
}

// On the C API rather than SQLite::Statement: text must bind as TEXT with
// an explicit length (SQLiteCpp's sized bind makes a BLOB, which compares
// unequal to TEXT), and SQLiteCpp's Column copies a shared_ptr per value,
// measurable on the backfill path. Errors throw database_error.
class sqlite_statement final : public statement
{
public:
    sqlite_statement(sqlite3* db, std::string const& sql) : db_(db)
    {
        check(sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                 SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr));
    }
    ~sqlite_statement() override { sqlite3_finalize(stmt_); }
    sqlite_statement(sqlite_statement const&) = delete;
    sqlite_statement& operator=(sqlite_statement const&) = delete;

    bool executeStep() override
    {
        int const rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc == SQLITE_DONE)
            return false;
        throw_sqlite(db_, rc);
    }

    int exec() override
    {
        int const rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW)
            throw database_error(errc::internal, "exec() of a statement that returns rows");
        if (rc != SQLITE_DONE)
            throw_sqlite(db_, rc);
        // Reset at once: a finished statement left un-reset still counts as
        // active and makes a later DROP TABLE fail with "table is locked".
        sqlite3_reset(stmt_);
        return sqlite3_changes(db_);
    }

    void reset() override { check(sqlite3_reset(stmt_)); }
    void clearBindings() override { sqlite3_clear_bindings(stmt_); }
    int getColumnCount() const override { return sqlite3_column_count(stmt_); }

    // sqlite3_reset's result ignored: it repeats the error of the last failed
    // step (e.g. a constraint violation of the previous job), which must not
    // fail the next, unrelated use of the cached statement.
    void recycle()
    {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    bool column_is_null(int i) const override
    {
        return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
    }
    std::int64_t column_int64(int i) const override { return sqlite3_column_int64(stmt_, i); }
    double column_double(int i) const override { return sqlite3_column_double(stmt_, i); }
    std::string_view column_text(int i) const override
    {
        auto const* text = reinterpret_cast<char const*>(sqlite3_column_text(stmt_, i));
        if (!text)
            return {"", 0}; // NOLINT(bugprone-string-constructor): non-null, so a rebind stays TEXT
        return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))};
    }

protected:
    void bind_int64(int i, std::int64_t v) override { check(sqlite3_bind_int64(stmt_, i, v)); }
    void bind_double(int i, double v) override { check(sqlite3_bind_double(stmt_, i, v)); }
    void bind_text(int i, std::string_view v, bool copy) override
    {
        check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                                copy ? SQLITE_TRANSIENT : SQLITE_STATIC));
    }
    void bind_null(int i) override { check(sqlite3_bind_null(stmt_, i)); }

private:
    void check(int rc) const
    {
        if (rc != SQLITE_OK)
            throw_sqlite(db_, rc);
    }

    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

class sqlite_connection final : public connection
{
public:
    sqlite_connection(std::string const& path, open_mode mode, database_options const& options)
    {
        translated([&] { open(path, mode, options); });
    }

    void open(std::string const& path, open_mode mode, database_options const& options)
    {
        // Read connections open read-write with query_only set: a true
        // read-only open fails on a WAL database whose -shm file does not exist yet.
        int const flags = SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
        db_ = std::make_unique<SQLite::Database>(path, flags, options.busy_timeout_ms);
        if (mode == open_mode::read_write)
            db_->exec("PRAGMA journal_mode=WAL");
        else
            db_->exec("PRAGMA query_only=1");
        db_->exec("PRAGMA foreign_keys=ON");
        switch (options.sync)
        {
        case sync_mode::off:
            db_->exec("PRAGMA synchronous=OFF");
            break;
        case sync_mode::normal:
            db_->exec("PRAGMA synchronous=NORMAL");
            break;
        case sync_mode::full:
            db_->exec("PRAGMA synchronous=FULL");
            break;
        }
        // A 16 MiB page cache (SQLite's default is 2 MiB) and memory temp
        // store: the working set of a chat DB is the tail of a few tables.
        // 64 MiB per connection held most of what 50 never-reading clients
        // of long answers cost in RSS (issue 19, bench/slow_readers.sh).
        db_->exec("PRAGMA cache_size=-16384");
        db_->exec("PRAGMA temp_store=MEMORY");
        if (options.max_page_count > 0)
            db_->exec("PRAGMA max_page_count=" + std::to_string(options.max_page_count));
    }

    ~sqlite_connection() override
    {
        // Statements must be finalized before the connection closes.
        statements_.clear();
    }

    statement& prepare(std::string const& sql) override
    {
        auto it = statements_.find(sql);
        if (it == statements_.end())
            return *statements_
                        .emplace(sql, std::make_unique<sqlite_statement>(db_->getHandle(), sql))
                        .first->second;
        it->second->recycle();
        return *it->second;
    }

    void exec(std::string const& sql) override
    {
        translated([&] { db_->exec(sql); });
    }

    bool try_exec(std::string const& sql) noexcept override
    {
        return sqlite3_exec(db_->getHandle(), sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    }

    bool has_table(std::string const& table) override
    {
        auto& q = prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
        q.bind(1, table);
        bool const found = q.executeStep();
        q.reset();
        return found;
    }

    // Cached until the schema changes (checked through `PRAGMA
    // schema_version`, which is cheaper than pragma_table_info on every
    // write of the hot path).
    bool has_column(std::string const& table, std::string const& column) override
    {
        auto& v = prepare("PRAGMA schema_version");
        v.executeStep();
        auto const version = v.getColumn(0).getInt64();
        v.reset();
        if (version != column_cache_version_)
        {
            column_cache_.clear();
            column_cache_version_ = version;
        }
        auto const key = table + '\0' + column;
        if (auto it = column_cache_.find(key); it != column_cache_.end())
            return it->second;

        auto& q = prepare("SELECT 1 FROM pragma_table_info(?) WHERE name=?");
        q.bind(1, table);
        q.bind(2, column);
        bool const found = q.executeStep();
        q.reset();
        column_cache_.emplace(key, found);
        return found;
    }

private:
    std::unique_ptr<SQLite::Database> db_;
    std::unordered_map<std::string, std::unique_ptr<sqlite_statement>> statements_;
    std::unordered_map<std::string, bool> column_cache_;
    long long column_cache_version_ = -1;
};

} // namespace

std::unique_ptr<connection> open_sqlite(std::string const& path, open_mode mode,
                                        database_options const& options)
{
    return std::make_unique<sqlite_connection>(path, mode, options);
}

} // namespace chatstream::storage::detail
