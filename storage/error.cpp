#include "chatstream/storage/error.hpp"

#include <sqlite3.h>

namespace chatstream::storage
{
namespace
{

class category final : public std::error_category
{
public:
    char const* name() const noexcept override { return "chatstream.storage"; }
    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev))
        {
        case errc::ok:
            return "ok";
        case errc::not_found:
            return "not found";
        case errc::conflict:
            return "conflict";
        case errc::invalid_argument:
            return "invalid argument";
        case errc::busy:
            return "database busy";
        case errc::full:
            return "database or disk is full";
        case errc::io:
            return "database I/O error";
        case errc::constraint:
            return "constraint violation";
        case errc::internal:
            return "internal storage error";
        }
        return "unknown storage error";
    }
};

} // namespace

std::error_category const& storage_category() noexcept
{
    static category const instance;
    return instance;
}

errc from_sqlite(int sqlite_code) noexcept
{
    switch (sqlite_code & 0xFF)
    {
    case SQLITE_OK:
        return errc::ok;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return errc::busy;
    case SQLITE_FULL:
        return errc::full;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return errc::io;
    case SQLITE_CONSTRAINT:
        return errc::constraint;
    case SQLITE_NOTFOUND:
        return errc::not_found;
    default:
        return errc::internal;
    }
}

} // namespace chatstream::storage
