#pragma once
/// @file consistency.hpp
/// Whole-database invariants of docs/design.md §4/§6, checked after crashes, soak
/// runs and migrations (`chatstream check`).
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace chatstream::storage
{

struct consistency_report
{
    std::vector<std::string> problems; ///< empty = consistent
    std::int64_t conversations = 0;
    std::int64_t messages = 0;
    std::int64_t tool_calls = 0;
    std::int64_t attachments = 0;
    std::int64_t sources = 0;
    std::int64_t unfinished = 0; ///< pending/generating (fine only while a server runs)
};

/// Runs every check on @p db (read-only). With @p offline (no server running),
/// unfinished messages are problems too: recovery should have ended them.
consistency_report check_consistency(database& db, bool offline);

} // namespace chatstream::storage
