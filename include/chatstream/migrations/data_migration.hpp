#pragma once
/// @file data_migration.hpp
/// Data migrations of docs/design.md §5: 001 `normalize_message_attachments`
/// (legacy JSON arrays -> attachments / tool_calls rows) and 002
/// `cleanup_deprecated_fields` (drop the legacy columns), with their state in
/// the `migrations` table and quarantined records in `migration_errors`.
///
/// Every function takes the connection it runs on. None of them is
/// thread-safe on its own: a `storage::database` belongs to one thread at a
/// time (the CLI thread or the writer thread).
///
/// Phases of 001 (the `migrations` row):
///  - `backfill` / `running`        batches are being copied (or were, before a crash)
///  - `dual-write` / `completed`    every legacy message has its rows; the server
///                                  still writes both shapes
///  - `dual-read` / `completed`     `verify` passed: the tables are proven equal
///                                  to the arrays, reads are served from tables
///  - `complete` / `completed`      002 dropped the legacy columns
///  - `backfill` / `rolled-back`    `rollback 001` removed the rows; `up` redoes it
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace chatstream::migrations
{

/// Ids in the `migrations` table.
inline constexpr char const* normalize_id = "001";
inline constexpr char const* normalize_name = "normalize_message_attachments";
inline constexpr char const* cleanup_id = "002";
inline constexpr char const* cleanup_name = "cleanup_deprecated_fields";

/// Messages per `migrate up` transaction when the caller does not say.
/// Measured on 1M generated messages (bench/RESULTS.md): every commit
/// rewrites the index pages its rows dirtied, and with random legacy ids that
/// is nearly one page per row per index, so throughput keeps rising with the
/// batch (10k: ~65% of the json_each ceiling, 50k: ~95%, 100k: above it).
/// 50k is where the target is met while one write transaction stays ~0.3 s.
inline constexpr std::size_t default_batch_size = 50000;

/// Refused operation (cleanup before verify passes, rollback after cleanup,
/// unknown id, ...). The CLI maps it to exit code 1.
class migration_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// One row of the `migrations` table.
struct migration_state
{
    std::string id;
    std::string name;
    std::string phase;  ///< schema | backfill | dual-write | dual-read | cleanup | complete
    std::string status; ///< pending | running | completed | failed | rolled-back
    std::optional<std::string> cursor;
    std::int64_t processed = 0;
    std::int64_t success_count = 0;
    std::int64_t error_count = 0;
    std::optional<std::string> last_processed_id;
    std::optional<std::int64_t> total_records;
    std::optional<std::int64_t> started_at;
    std::optional<std::int64_t> updated_at;
    std::optional<std::int64_t> completed_at;
    std::optional<std::string> error;
};

/// Every row of `migrations`, by id (empty before the schema exists).
std::vector<migration_state> read_migrations(storage::database& db);
std::optional<migration_state> read_migration(storage::database& db, std::string const& id);

/// Number of quarantined records of @p migration_id.
std::int64_t quarantined_count(storage::database& db, std::string const& migration_id);

/// JSON object of every counter (schema files, migrations rows, quarantine),
/// the `migrate status --json` document.
std::string status_json(storage::database& db);

//------------------------------------------------------------------------------

/// Result of one backfill batch.
struct batch_result
{
    std::size_t processed = 0;   ///< messages read in this batch
    std::size_t quarantined = 0; ///< of which were quarantined
    bool done = false;           ///< no message left after the cursor: phase moved on
};

/// Migration 001, one batch at a time. The caller owns the transaction:
/// `step` must run inside one (the CLI opens an IMMEDIATE transaction per
/// batch; the online runner uses the writer's), so the rows of the batch and
/// its checkpoint commit together or not at all.
///
/// Cursor: the messages `rowid` (keyset, `rowid > cursor ORDER BY rowid`),
/// i.e. physical order, the fastest full scan, and the same order
/// `json_each` would read. `last_processed_id` records the message id at the
/// cursor; if a VACUUM renumbered rowids in between, `begin` notices the
/// mismatch and restarts from the start (safe: every write is an idempotent
/// upsert on a natural key).
namespace normalize
{

/// What `begin` decided.
enum class start_kind
{
    not_applicable, ///< no legacy columns: recorded as complete, nothing to do
    already_done,   ///< completed earlier (short-circuit)
    fresh,          ///< first run, or re-run after a rollback
    resumed         ///< continues from a checkpoint (crash, failure, stop)
};

/// Creates or resumes the `migrations` row (phase backfill, status running)
/// and counts `total_records`. Runs its own statements: call it inside a
/// transaction or in autocommit mode.
start_kind begin(storage::database& db);

/// Converts up to @p batch_size messages after the checkpoint and advances
/// it; when nothing is left, marks the phase `dual-write` / `completed`.
/// Malformed messages go to `migration_errors` and never stop the batch.
/// @throws storage::database_error on storage failure (the caller's transaction
///         then rolls back the whole batch, checkpoint included).
batch_result step(storage::database& db, std::size_t batch_size);

/// Records a failure on the row (status failed, error text) so `status` shows it.
void mark_failed(storage::database& db, std::string const& error);

/// Marks a running 001 as stopped before completion (status pending), e.g.
/// when the server shuts down during an online backfill.
void mark_paused(storage::database& db);

} // namespace normalize

//------------------------------------------------------------------------------

/// One difference between a legacy array and the table rows.
struct mismatch
{
    std::string message_id;
    std::string detail;
};

struct verify_report
{
    std::int64_t messages = 0; ///< messages checked
    std::int64_t expected_attachments = 0;
    std::int64_t expected_tool_calls = 0;
    std::int64_t quarantined = 0; ///< malformed and kept in migration_errors
    std::int64_t mismatch_count = 0;
    std::vector<mismatch> mismatches; ///< the first `max_reported`
    bool legacy_columns = true;       ///< false after cleanup: nothing to compare

    bool ok() const noexcept { return mismatch_count == 0; }
};

/// Compares every message's legacy arrays (converted by the rules of §5) with
/// its attachments / tool_calls rows: same set of keys and the same values
/// (JSON compared canonically). A malformed message is a mismatch unless it
/// is quarantined. When the check passes and 001 is complete, phase moves
/// from dual-write to dual-read.
verify_report verify(storage::database& db, std::size_t max_reported = 50);

/// Migration 002: refuses (migration_error) while 001 is not completed or
/// when `verify` finds any mismatch (002's row then says `failed` and why);
/// then rebuilds `messages` without the three legacy columns and with ON
/// DELETE CASCADE foreign keys (SQLite's 12-step ALTER procedure, foreign keys
/// off during it, foreign_key_check after), and marks 001 and 002 complete.
/// On SQLite, verify and the rebuild share one write transaction, and when
/// no other connection has the file open (and @p offline) the rebuild runs
/// on a rollback journal, then back to WAL. Must not run inside a transaction.
/// @return number of messages rewritten.
std::int64_t cleanup(storage::database& db, bool offline = true);

/// Undoes 001 before cleanup: deletes the rows 001 created (ids derived from
/// natural keys), its quarantine entries, resets the checkpoint and marks it
/// rolled-back. Rows the live server wrote (random ids) stay; their data is
/// also still in the legacy arrays via dual-write.
/// @throws migration_error for an unknown id or after cleanup.
/// @return rows deleted.
std::int64_t rollback(storage::database& db, std::string const& id);

} // namespace chatstream::migrations
