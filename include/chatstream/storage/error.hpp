#pragma once
/// @file error.hpp
/// Error codes of the storage layer. Write jobs report through std::error_code
/// so completions can cross threads without exceptions.
#include <stdexcept>
#include <string>
#include <system_error>

namespace chatstream::storage
{

enum class errc
{
    ok = 0,
    not_found = 1,    ///< no such row for this user
    conflict,         ///< e.g. a generation already running in the conversation
    invalid_argument, ///< a value the schema refuses
    busy,             ///< SQLITE_BUSY / SQLITE_LOCKED after the busy timeout
    full,             ///< SQLITE_FULL: disk or max_page_count exhausted
    io,               ///< SQLITE_IOERR and other I/O failures
    constraint,       ///< constraint violation not mapped to a domain error
    internal          ///< anything else
};

std::error_category const& storage_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), storage_category()};
}

/// Maps an SQLite (extended) result code onto errc.
errc from_sqlite(int sqlite_code) noexcept;

/// Domain error thrown inside write jobs; the writer turns it into the
/// job's error_code and rolls back that job's savepoint only.
class storage_error : public std::runtime_error
{
public:
    storage_error(errc code, std::string const& what) : std::runtime_error(what), code_(code) {}
    errc code() const noexcept { return code_; }

private:
    errc code_;
};

} // namespace chatstream::storage

template <> struct std::is_error_code_enum<chatstream::storage::errc> : std::true_type
{
};
