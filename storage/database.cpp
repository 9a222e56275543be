#include "chatstream/storage/database.hpp"

#include "detail/connection.hpp"

namespace chatstream::storage
{

database_location parse_location(std::string const& location)
{
    for (std::string_view scheme : {"postgres://", "postgresql://"})
        if (location.starts_with(scheme))
            return {dialect::postgres, location};
    if (location.starts_with("sqlite:"))
        return {dialect::sqlite, location.substr(7)};
    return {dialect::sqlite, location};
}

database::database(std::string const& location, open_mode mode, database_options const& options)
    : location_(location)
{
    auto const where = parse_location(location);
    dialect_ = where.dialect;
    if (dialect_ == dialect::postgres)
        conn_ = detail::open_postgres(where.target, mode, options);
    else
    {
        path_ = where.target;
        conn_ = detail::open_sqlite(where.target, mode, options);
    }
}

database::database(database&&) noexcept = default;
database& database::operator=(database&&) noexcept = default;
database::~database() = default;

statement& database::prepare(std::string const& sql)
{
    return conn_->prepare(sql);
}
void database::exec(std::string const& sql)
{
    conn_->exec(sql);
}
bool database::try_exec(std::string const& sql) noexcept
{
    return conn_->try_exec(sql);
}
bool database::has_column(std::string const& table, std::string const& column)
{
    return conn_->has_column(table, column);
}
bool database::has_table(std::string const& table)
{
    return conn_->has_table(table);
}

//------------------------------------------------------------------------------

void detail::connection::begin(bool immediate)
{
    // IMMEDIATE: the writer takes the write lock up front, so a lock upgrade
    // never deadlocks against a reader.
    exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

void detail::connection::commit()
{
    exec("COMMIT");
}

bool detail::connection::rollback() noexcept
{
    return try_exec("ROLLBACK");
}

// Savepoints run once per writer job, so their statements come from the
// cache instead of being re-parsed every time.
void detail::connection::savepoint(std::string const& name)
{
    prepare("SAVEPOINT " + name).exec();
}

void detail::connection::release(std::string const& name)
{
    prepare("RELEASE SAVEPOINT " + name).exec();
}

bool detail::connection::rollback_to(std::string const& name) noexcept
{
    // ROLLBACK TO keeps the savepoint open; RELEASE then pops it.
    bool const ok = try_exec("ROLLBACK TO SAVEPOINT " + name);
    return try_exec("RELEASE SAVEPOINT " + name) && ok;
}

//------------------------------------------------------------------------------

transaction::transaction(database& db, behavior b) : db_(db)
{
    db_.backend().begin(b == behavior::immediate);
}

transaction::~transaction()
{
    if (!done_)
        db_.backend().rollback();
}

void transaction::commit()
{
    db_.backend().commit();
    done_ = true;
}

//------------------------------------------------------------------------------

savepoint::savepoint(database& db, char const* name) : db_(db), name_(name)
{
    db_.backend().savepoint(name_);
}

savepoint::~savepoint()
{
    if (!done_)
        db_.backend().rollback_to(name_);
}

void savepoint::release()
{
    db_.backend().release(name_);
    done_ = true;
}

} // namespace chatstream::storage
