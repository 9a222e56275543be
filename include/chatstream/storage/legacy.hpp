#pragma once
/// @file legacy.hpp
/// The legacy message shape of docs/design.md §5: JSON arrays inside message rows.
///
/// Storage owns this format because it reads it (fallback while migration 001
/// is not finished) and writes it (dual-write); migration 001 uses the same
/// conversion, so the backfill and the fallback can never disagree.
#include "chatstream/storage/types.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace chatstream::storage::legacy
{

/// The three legacy columns of one message (NULL = std::nullopt).
struct arrays
{
    std::optional<std::string> attachments;
    std::optional<std::string> tool_calls;
    std::optional<std::string> partial_tool_calls;
};

/// Identity of the message the arrays belong to; copied into every row.
struct message_context
{
    std::string message_id;
    std::string conversation_id;
    std::string user_id;
    std::int64_t created_at = 0;
};

/// Rows that migration 001 creates for one message.
struct rows
{
    std::vector<attachment_row> attachments; ///< position = array index
    std::vector<tool_call_row> tool_calls;   ///< one per distinct id
};

/// Converts one message's arrays by the rules of docs/design.md §5 (final wins
/// over partial, last occurrence of an id wins, missing textPosition is
/// NULL, empty/missing arguments is `{}`, args/result canonical JSON).
/// Row ids are derived from the natural keys, so a re-run yields the same rows.
/// @return the rows, or a precise reason why the message must be quarantined
///         (e.g. `tool_calls[2].arguments: invalid JSON (TAPE_ERROR)`).
std::variant<rows, std::string> convert(message_context const& ctx, arrays const& in);

} // namespace chatstream::storage::legacy
