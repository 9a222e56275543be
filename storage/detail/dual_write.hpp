#pragma once
// Dual-write and dual-read of the legacy JSON arrays while migration 001's
// columns still exist (docs/migrations.md).
#include "chatstream/storage/database.hpp"
#include "chatstream/storage/legacy.hpp"

#include <optional>
#include <string>

namespace chatstream::storage::detail
{

/// Rebuilds `tool_calls` / `partial_tool_calls` of one message from its rows.
void refresh_legacy_tool_calls(database& db, std::string const& message_id);
/// Rebuilds `attachments` of one message from its rows.
void refresh_legacy_attachments(database& db, std::string const& message_id);
/// The rows of a message not yet backfilled by migration 001, converted
/// from its legacy arrays; nullopt without legacy columns or when quarantined.
std::optional<legacy::rows> legacy_rows_for(database& db, std::string const& message_id);

} // namespace chatstream::storage::detail
