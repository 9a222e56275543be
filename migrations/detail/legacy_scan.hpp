#pragma once
// Internals shared by the data-migration files (migration_state, normalize_001,
// verify, cleanup_002): bookkeeping helpers and the one keyset scan over the
// legacy columns that both 001's batches and verify read with.
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace chatstream::migrations::detail
{

/// @throws migration_error when the schema (the `migrations` table) is missing.
void require_bookkeeping(storage::database& db);
std::int64_t count_messages(storage::database& db);
/// Starts 001 from scratch: counters zero, no cursor, no quarantine.
void reset_normalize(storage::database& db, char const* phase, char const* status);
void set_phase(storage::database& db, char const* id, char const* name, char const* phase,
               char const* status, bool completed);

/// A legacy column with nothing to convert: NULL, '' or '[]'. Checked on the
/// raw column so the common case costs no allocation and no parse.
bool blank(storage::column const& c);
/// Copies a column into @p out, reusing its buffer (NULL -> nullopt).
void assign(std::optional<std::string>& out, storage::column const& c);

/// `verify` for a caller that holds the write transaction (002): nobody can
/// commit meanwhile, so on SQLite other connections read exactly what the
/// caller sees, and the messages are checked in rowid ranges on up to
/// @p threads threads (each its own read connection). PostgreSQL, or
/// threads = 1: `verify`.
verify_report verify_frozen(storage::database& db, std::size_t max_reported, unsigned threads);

/// Keyset scan of `messages` with its legacy columns, after a cursor.
///
/// SQLite: `rowid > cursor ORDER BY rowid`, one statement (physical order,
/// the fastest full scan). PostgreSQL has no stable rowid (ctid moves on
/// UPDATE/VACUUM), so the keyset is the primary key, `id > cursor ORDER BY id`,
/// read in pages because libpq buffers a whole result in memory.
///
/// Columns of the current row: 0 rowid (0 on PostgreSQL), 1 id,
/// 2 conversation_id, 3 user_id, 4 created_at, 5 attachments, 6 tool_calls,
/// 7 partial_tool_calls. Valid until the next `next()`.
class message_scan
{
public:
    /// @param cursor  what `cursor()` returned earlier (rowid or id); nullopt = from the start
    /// @param limit   messages at most; 0 = all
    /// @param parents answer `parents()` (PostgreSQL folds the check into the scan)
    /// @param until   SQLite only: stop after this rowid (a range of a parallel verify)
    message_scan(storage::database& db, std::optional<std::string> cursor, std::size_t limit,
                 bool parents, std::int64_t until = std::numeric_limits<std::int64_t>::max());
    message_scan(message_scan const&) = delete;
    message_scan& operator=(message_scan const&) = delete;
    ~message_scan();

    /// Steps to the next message; false at the end (or after `limit`).
    bool next();
    storage::column column(int index) { return sel_->getColumn(index); }
    std::int64_t rowid() const noexcept { return rowid_; }
    /// The checkpoint to resume after the current row: rowid or id.
    std::string cursor() const;
    std::string const& id() const noexcept { return id_; }
    /// Whether the current message's conversation and user exist (legacy
    /// databases rarely enforced foreign keys). Requires `parents`; only valid
    /// inside the write transaction the scan runs in.
    std::pair<bool, bool> parents(std::string const& conversation_id, std::string const& user_id);

private:
    void open_page();

    storage::database& db_;
    bool const pg_;
    bool const parents_;
    std::size_t const limit_;
    std::int64_t const until_;
    std::size_t page_ = 0;
    std::size_t seen_ = 0;      // in this scan
    std::size_t page_seen_ = 0; // in the current page
    std::optional<std::string> after_;
    std::int64_t rowid_ = 0;
    std::string id_;
    std::string known_conversation_, known_user_; // the last pair parents() found
    storage::statement* sel_ = nullptr;
    bool end_ = false;
};

} // namespace chatstream::migrations::detail
