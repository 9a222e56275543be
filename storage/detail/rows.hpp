#pragma once
// Shared by the repository files (one per entity): keyset cursors, the
// select lists and readers of conversations and messages, and the owner check.
#include "chatstream/storage/database.hpp"
#include "chatstream/storage/types.hpp"

#include <cstdint>
#include <string>
#include <utility>

namespace chatstream::storage::detail
{

/// Keyset cursors are "<int>|<id>". Throws storage_error(invalid) on a
/// malformed one.
std::pair<std::int64_t, std::string> decode_cursor(std::string const& cursor);
std::string encode_cursor(std::int64_t key, std::string const& id);

/// The select list read_conversation() expects.
extern char const* const conversation_columns;
conversation_row read_conversation(statement& q);

/// The select list read_message() expects (partial texts folded with their
/// appended chunks, in @p db's dialect).
std::string const& message_columns(database& db);
message_row read_message(statement& q);

/// Whether @p message_id exists and belongs to @p user_id.
bool owns_message(database& db, std::string const& user_id, std::string const& message_id);

} // namespace chatstream::storage::detail
