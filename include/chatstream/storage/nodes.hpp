#pragma once
/// @file nodes.hpp
/// Several chatstream nodes on one database (issue 10): node leases, which
/// node runs which generation, and cross-node notifications.
///
/// A node joins with a random id and renews its lease (`heartbeat_at`) every
/// few seconds. Every generation names its node in `generations`, written in
/// the transaction that accepts it and deleted in the one that ends it. A
/// pending/generating message whose node is missing or whose lease lapsed is
/// an orphan: `recover_orphans` interrupts it. So restart recovery never
/// touches the generations of a live peer.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chatstream::storage::nodes
{

/// PostgreSQL channels. Payloads are message ids, far below NOTIFY's 8000
/// byte limit: a listener reads what it needs from the tables.
inline constexpr char const* progress_channel =
    "chatstream_progress"; ///< text/tool/status of a generation changed
inline constexpr char const* cancel_channel =
    "chatstream_cancel"; ///< stop this generation, whoever runs it
/// A committed `changed` event for another node's watchers: "node\nuser\nframe".
inline constexpr char const* changes_channel = "chatstream_changes";
/// Largest payload PostgreSQL's NOTIFY takes (8000 bytes, minus headroom).
inline constexpr std::size_t max_notify_payload = 7900;

/// Registers @p node_id with a fresh lease (idempotent).
void join(database& db, std::string const& node_id, std::string const& address, std::int64_t now);

/// Renews the lease. @return false when the row was gone (a peer expired
/// this node after a long stall); the caller re-joins.
bool heartbeat(database& db, std::string const& node_id, std::int64_t now);

/// Removes the node (clean shutdown, after its generations ended).
void leave(database& db, std::string const& node_id);

/// Ends the lease of @p node_id's previous run (it restarts under the same
/// id): whatever it claimed is an orphan now, not in a lease's time.
void end_lease(database& db, std::string const& node_id);

/// Records that @p node_id runs the generation of @p message_id.
void claim(database& db, std::string const& message_id, std::string const& node_id,
           std::int64_t now);

/// The generation of @p message_id ended (its terminal state is in this transaction).
void release(database& db, std::string const& message_id);

struct owner
{
    std::string node_id;
    bool live = false; ///< the node's lease is current
};
/// Which node runs @p message_id's generation, if any.
std::optional<owner> generation_owner(database& db, std::string const& message_id, std::int64_t now,
                                      std::int64_t lease_ms);

/// True when some node runs a generation in @p conversation_id. On
/// PostgreSQL it first locks the conversation row, so two nodes accepting a
/// generation in one conversation at once are serialized and the second sees
/// the first's claim.
bool busy_in_conversation(database& db, std::string const& conversation_id);

/// Interrupts every pending/generating message that no live node runs and
/// forgets expired nodes. @return the ids interrupted.
std::vector<std::string> recover_orphans(database& db, std::int64_t now, std::int64_t lease_ms);

/// NOTIFY @p channel with @p payload, delivered at commit (PostgreSQL; a
/// no-op on SQLite, where one process owns the database).
void notify(database& db, char const* channel, std::string const& payload);

} // namespace chatstream::storage::nodes
