#pragma once
/// @file columns.hpp
/// NULL-aware column reads and binds for storage::statement. Shared by
/// storage and migrations.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace chatstream::storage
{

/// Binds @p v, or NULL when empty.
template <class T> void bind_opt(statement& s, int index, std::optional<T> const& v)
{
    if (v)
        s.bind(index, *v);
    else
        s.bind(index);
}

/// Binds @p v in place, or NULL when empty: @p v must outlive the
/// statement's next step/exec (a row bound for one insert).
inline void bind_ref(statement& s, int index, std::optional<std::string> const& v)
{
    if (v)
        s.bindNoCopy(index, *v);
    else
        s.bind(index);
}

/// The text a generating message has flushed so far, as an SQL expression
/// over `messages`: the `partial_content` column followed by the appended
/// `message_chunks` in byte order (NULL when there is neither).
/// Which appended text: the answer's or the reasoning's.
enum class partial_channel
{
    content,   ///< partial_content + message_chunks
    reasoning, ///< partial_reasoning + reasoning_chunks
};

inline std::string partial_text_sql(dialect d, partial_channel ch = partial_channel::content)
{
    std::string const table =
        ch == partial_channel::content ? "message_chunks" : "reasoning_chunks";
    std::string const column =
        ch == partial_channel::content ? "messages.partial_content" : "messages.partial_reasoning";
    std::string const chunks =
        d == dialect::postgres
            ? "(SELECT string_agg(k.text, '' ORDER BY k.byte_start) FROM " + table +
                  " k WHERE k.message_id = messages.id)"
            // SQLite 3.40 has no ORDER BY inside an aggregate; the ordered
            // subquery feeds group_concat in byte order.
            : "(SELECT group_concat(t, '') FROM (SELECT k.text AS t FROM " + table +
                  " k WHERE k.message_id = messages.id ORDER BY k.byte_start))";
    return "CASE WHEN EXISTS(SELECT 1 FROM " + table +
           " k WHERE k.message_id = messages.id) THEN coalesce(" + column + ", '') || " + chunks +
           " ELSE " + column + " END";
}

inline std::optional<std::string> opt_text(column c)
{
    if (c.isNull())
        return std::nullopt;
    return c.getString();
}

inline std::optional<std::int64_t> opt_int(column c)
{
    if (c.isNull())
        return std::nullopt;
    return c.getInt64();
}

inline std::optional<double> opt_real(column c)
{
    if (c.isNull())
        return std::nullopt;
    return c.getDouble();
}

} // namespace chatstream::storage
