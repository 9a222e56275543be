#pragma once
/// @file rows.hpp
/// The row layouts of `attachments` and `tool_calls`: one column order, one
/// binder and one reader per table. The repositories, branching and migration
/// 001 all use these, so a column is added in one place.
#include "chatstream/storage/database.hpp"
#include "chatstream/storage/types.hpp"

namespace chatstream::storage::rows
{

/// The columns of `attachments`, in the order bind() and read_attachment() use.
inline constexpr char const attachment_columns[] =
    "id, message_id, conversation_id, user_id, position, type, name, storage_id, mime_type, "
    "size, metadata, created_at";

/// The columns of `tool_calls`, in the order bind() and read_tool_call() use.
inline constexpr char const tool_call_columns[] =
    "id, message_id, conversation_id, user_id, tool_call_id, tool_name, args, result, "
    "text_position, is_partial, timestamp, created_at";

/// Values per row of either table (the width of a multi-row VALUES list).
inline constexpr int attachment_width = 12;
inline constexpr int tool_call_width = 12;

/// Binds @p r to parameters `first + 1` .. `first + 12` as it is (no
/// defaults filled) and without copying: @p r must outlive the statement's
/// exec().
void bind(statement& s, int first, attachment_row const& r);
void bind(statement& s, int first, tool_call_row const& r);

/// Reads the current row of a statement that selected the column list above.
attachment_row read_attachment(statement& q);
tool_call_row read_tool_call(statement& q);

} // namespace chatstream::storage::rows
