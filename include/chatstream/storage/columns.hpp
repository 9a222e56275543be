#pragma once
/// @file columns.hpp
/// NULL-aware column reads and binds for storage::statement. Shared by
/// storage and migrations.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace chatstream::storage {

/// Binds @p v, or NULL when empty.
template <class T>
void bind_opt(statement& s, int index, std::optional<T> const& v)
{
    if (v)
        s.bind(index, *v);
    else
        s.bind(index);
}

inline std::optional<std::string> opt_text(column c)
{
    if (c.isNull()) return std::nullopt;
    return c.getString();
}

inline std::optional<std::int64_t> opt_int(column c)
{
    if (c.isNull()) return std::nullopt;
    return c.getInt64();
}

inline std::optional<double> opt_real(column c)
{
    if (c.isNull()) return std::nullopt;
    return c.getDouble();
}

} // namespace chatstream::storage
