#pragma once
// The offline bulk load of 001 on SQLite (`migrate up` with no other
// connection open): see docs/migrations.md "Offline bulk load".
#include "chatstream/storage/database.hpp"

#include <optional>
#include <string>

namespace chatstream::migrations::detail
{

/// Table holding the SQL of secondary indexes dropped for a bulk load, so a
/// killed load can put them back. Exists only while indexes are deferred.
inline constexpr char const* deferred_indexes_table = "migration_deferred_indexes";

/// Test hook: with CHATSTREAM_TEST_PAUSE_AT=@p point in the environment,
/// logs "test pause at <point>" and sleeps 3 s there, so a test can kill -9
/// the process at exactly that moment (journal, drop, index_build, wal).
void pause_point(char const* point);

/// Leaves WAL for a TRUNCATE rollback journal when no other connection has
/// the file open (SQLite refuses at once otherwise: then false, nothing
/// changed), and maps the file for reads. For one-connection bulk rewrites
/// (002's rebuild); must run outside a transaction. @p who prefixes the log.
bool try_truncate_journal(storage::database& db, char const* who);

/// Undoes try_truncate_journal: no mapping, back to WAL (what every other
/// opener expects). Outside a transaction; never throws.
void back_to_wal(storage::database& db) noexcept;

/// Re-creates every deferred index and drops the stash, in the caller's
/// transaction (so a kill leaves the stash whole). No-op without a stash.
/// @return indexes built.
int restore_deferred_indexes(storage::database& db);

/// One offline load: rollback journal instead of WAL, foreign keys off on
/// this connection (001 checks the parents itself), the secondary indexes of
/// attachments and tool_calls dropped until the last batch. Not thread-safe;
/// one per connection.
class offline_load
{
public:
    /// Switches @p db to the bulk settings if SQLite lets it leave WAL mode,
    /// which it only does when no other connection has the file open (a
    /// server attached): then nullopt and nothing changed. Must run outside a
    /// transaction.
    static std::optional<offline_load> try_begin(storage::database& db);

    /// Builds the deferred indexes; call inside the final batch's
    /// transaction so "001 completed" and "indexes present" commit together.
    void finish(storage::database& db);

    /// Back to WAL and foreign keys on (outside a transaction). Idempotent;
    /// also called on a stop or a failure, after the indexes are restored.
    void end(storage::database& db) noexcept;

private:
    offline_load() = default;
    bool ended_ = false;
};

} // namespace chatstream::migrations::detail
