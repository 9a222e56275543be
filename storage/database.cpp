#include "chatstream/storage/database.hpp"

#include <sqlite3.h>

namespace chatstream::storage {

database::database(std::string const& path, open_mode mode, database_options const& options)
    : path_(path)
{
    // Read connections open read-write with query_only set: a true read-only
    // open fails on a WAL database whose -shm file does not exist yet.
    int const flags = SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    db_ = std::make_unique<SQLite::Database>(path, flags, options.busy_timeout_ms);
    if (mode == open_mode::read_write) db_->exec("PRAGMA journal_mode=WAL");
    else db_->exec("PRAGMA query_only=1");
    db_->exec("PRAGMA foreign_keys=ON");
    switch (options.sync)
    {
    case sync_mode::off: db_->exec("PRAGMA synchronous=OFF"); break;
    case sync_mode::normal: db_->exec("PRAGMA synchronous=NORMAL"); break;
    case sync_mode::full: db_->exec("PRAGMA synchronous=FULL"); break;
    }
    // Bigger page cache and memory temp store: the working set of a chat DB
    // is the tail of a few tables.
    db_->exec("PRAGMA cache_size=-65536");
    db_->exec("PRAGMA temp_store=MEMORY");
    if (options.max_page_count > 0)
        db_->exec("PRAGMA max_page_count=" + std::to_string(options.max_page_count));
}

database::database(database&&) noexcept = default;
database& database::operator=(database&&) noexcept = default;

database::~database()
{
    // Statements must be finalized before the connection closes.
    statements_.clear();
}

SQLite::Statement& database::prepare(std::string const& sql)
{
    auto it = statements_.find(sql);
    if (it == statements_.end())
    {
        auto stmt = std::make_unique<SQLite::Statement>(*db_, sql);
        it = statements_.emplace(sql, std::move(stmt)).first;
        return *it->second;
    }
    auto& stmt = *it->second;
    // tryReset, not reset: sqlite3_reset returns the error of the statement's
    // last failed step (e.g. a constraint violation of the previous job), and
    // reset() would throw it again here, failing the next, unrelated use.
    stmt.tryReset();
    stmt.clearBindings();
    return stmt;
}

void database::exec(std::string const& sql)
{
    db_->exec(sql);
}

bool database::try_exec(std::string const& sql) noexcept
{
    return sqlite3_exec(db_->getHandle(), sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
}

bool database::has_table(std::string const& table)
{
    auto& q = prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
    q.bind(1, table);
    bool const found = q.executeStep();
    q.reset();
    return found;
}

bool database::has_column(std::string const& table, std::string const& column)
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
    if (auto it = column_cache_.find(key); it != column_cache_.end()) return it->second;

    auto& q = prepare("SELECT 1 FROM pragma_table_info(?) WHERE name=?");
    q.bind(1, table);
    q.bind(2, column);
    bool const found = q.executeStep();
    q.reset();
    column_cache_.emplace(key, found);
    return found;
}

//------------------------------------------------------------------------------

transaction::transaction(database& db, behavior b) : db_(db)
{
    db_.exec(b == behavior::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

transaction::~transaction()
{
    if (!done_) db_.try_exec("ROLLBACK");
}

void transaction::commit()
{
    db_.exec("COMMIT");
    done_ = true;
}

//------------------------------------------------------------------------------

// Savepoints run once per writer job, so their statements come from the
// cache instead of being re-parsed by sqlite3_exec every time.
savepoint::savepoint(database& db, char const* name) : db_(db), name_(name)
{
    db_.prepare("SAVEPOINT " + name_).exec();
}

savepoint::~savepoint()
{
    if (!done_)
    {
        // ROLLBACK TO keeps the savepoint open; RELEASE then pops it.
        db_.try_exec("ROLLBACK TO " + name_);
        db_.try_exec("RELEASE " + name_);
    }
}

void savepoint::release()
{
    db_.prepare("RELEASE " + name_).exec();
    done_ = true;
}

} // namespace chatstream::storage
