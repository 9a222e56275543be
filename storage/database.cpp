#include "chatstream/storage/database.hpp"

namespace chatstream::storage {

database_location parse_location(std::string const& location)
{
    for (std::string_view scheme : {"postgres://", "postgresql://"})
        if (location.starts_with(scheme)) return {dialect::postgres, location};
    if (location.starts_with("sqlite:")) return {dialect::sqlite, location.substr(7)};
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

//------------------------------------------------------------------------------

transaction::transaction(database& db, behavior b) : db_(db)
{
    db_.exec(b == behavior::immediate ? db_.backend().begin_immediate() : "BEGIN");
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
// cache instead of being re-parsed every time.
savepoint::savepoint(database& db, char const* name) : db_(db), name_(name)
{
    db_.prepare("SAVEPOINT " + name_).exec();
}

savepoint::~savepoint()
{
    if (!done_)
    {
        // ROLLBACK TO keeps the savepoint open; RELEASE then pops it.
        db_.try_exec("ROLLBACK TO SAVEPOINT " + name_);
        db_.try_exec("RELEASE SAVEPOINT " + name_);
    }
}

void savepoint::release()
{
    db_.prepare("RELEASE SAVEPOINT " + name_).exec();
    done_ = true;
}

} // namespace chatstream::storage
