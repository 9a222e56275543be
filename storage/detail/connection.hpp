#pragma once
// The backend behind a storage::database: one SQLite or libpq connection
// with its statement cache. Private to storage/ (sqlite_backend.cpp,
// postgres_backend.cpp, database.cpp).
#include "chatstream/storage/database.hpp"

#include <memory>
#include <string>

namespace chatstream::storage::detail
{

/// The backend behind a `database`.
class connection
{
public:
    virtual ~connection() = default;
    virtual statement& prepare(std::string const& sql) = 0;
    virtual void exec(std::string const& sql) = 0;
    virtual bool try_exec(std::string const& sql) noexcept = 0;
    virtual bool has_table(std::string const& table) = 0;
    virtual bool has_column(std::string const& table, std::string const& column) = 0;

    // Transaction control for `transaction` and `savepoint`, apart from
    // exec() so a backend may batch it: PostgreSQL holds BEGIN, SAVEPOINT
    // and RELEASE back and sends them in the round trip of the next
    // statement. The defaults run each one at once, in SQLite's dialect.
    virtual void begin(bool immediate);
    virtual void commit();
    virtual bool rollback() noexcept;
    virtual void savepoint(std::string const& name);
    virtual void release(std::string const& name);
    /// Undoes everything since savepoint @p name and pops it.
    virtual bool rollback_to(std::string const& name) noexcept;
};

std::unique_ptr<connection> open_sqlite(std::string const& path, open_mode mode,
                                        database_options const& options);
std::unique_ptr<connection> open_postgres(std::string const& uri, open_mode mode,
                                          database_options const& options);

} // namespace chatstream::storage::detail
