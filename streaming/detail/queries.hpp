#pragma once
// Read-only queries of the protocol (docs/design.md §6), run on the read pool.
#include "chatstream/streaming/protocol.hpp"
#include "chatstream/streaming/quota.hpp"

#include <functional>
#include <string>

namespace chatstream::storage
{
class read_pool;
}

namespace chatstream::streaming::detail
{

/// Runs @p q for @p user_id on a read-pool thread and calls @p reply there
/// with the `result` or `error` frame. Someone else's ids give `not_found`.
/// @p limits are reported by getUsage.
void run_query(storage::read_pool& reads, std::string user_id, query_request q, quota_limits limits,
               std::function<void(frame)> reply);

} // namespace chatstream::streaming::detail
