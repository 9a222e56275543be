#include "detail/legacy_scan.hpp"

#include "chatstream/core/clock.hpp"

#include <charconv>
#include <cstring>

namespace chatstream::migrations::detail
{

void require_bookkeeping(storage::database& db)
{
    if (!db.has_table("migrations"))
        throw migration_error(
            "the schema is not applied (no migrations table); run `chatstream migrate up`");
}

std::int64_t count_messages(storage::database& db)
{
    auto& q = db.prepare("SELECT count(*) FROM messages");
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

void reset_normalize(storage::database& db, char const* phase, char const* status)
{
    auto const now = core::now_ms();
    auto& e = db.prepare("DELETE FROM migration_errors WHERE migration_id = ?");
    e.bind(1, normalize_id);
    e.exec();
    auto& q =
        db.prepare("INSERT INTO migrations(id, name, phase, status, cursor, processed, "
                   "success_count, error_count, "
                   "last_processed_id, total_records, started_at, updated_at, completed_at, error) "
                   "VALUES(?1, ?2, ?3, ?4, NULL, 0, 0, 0, NULL, ?5, ?6, ?6, NULL, NULL) "
                   "ON CONFLICT(id) DO UPDATE SET phase = excluded.phase, status = "
                   "excluded.status, cursor = NULL, "
                   "processed = 0, success_count = 0, error_count = 0, last_processed_id = NULL, "
                   "total_records = excluded.total_records, started_at = excluded.started_at, "
                   "updated_at = excluded.updated_at, completed_at = NULL, error = NULL");
    q.bind(1, normalize_id);
    q.bind(2, normalize_name);
    q.bind(3, phase);
    q.bind(4, status);
    q.bind(5, count_messages(db));
    q.bind(6, now);
    q.exec();
}

void set_phase(storage::database& db, char const* id, char const* name, char const* phase,
               char const* status, bool completed)
{
    auto const now = core::now_ms();
    auto& q = db.prepare(
        "INSERT INTO migrations(id, name, phase, status, started_at, updated_at, completed_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6) "
        "ON CONFLICT(id) DO UPDATE SET phase = excluded.phase, status = excluded.status, "
        "updated_at = excluded.updated_at, started_at = coalesce(migrations.started_at, "
        "excluded.started_at), "
        "completed_at = excluded.completed_at, error = NULL");
    q.bind(1, id);
    q.bind(2, name);
    q.bind(3, phase);
    q.bind(4, status);
    q.bind(5, now);
    if (completed)
        q.bind(6, now);
    else
        q.bind(6);
    q.exec();
}

bool blank(storage::column const& c)
{
    if (c.isNull())
        return true;
    auto const n = c.getBytes();
    return n == 0 || (n == 2 && std::memcmp(c.getText(), "[]", 2) == 0);
}

void assign(std::optional<std::string>& out, storage::column const& c)
{
    if (c.isNull())
        out.reset();
    else if (out)
        out->assign(c.getText(), static_cast<std::size_t>(c.getBytes()));
    else
        out.emplace(c.getText(), static_cast<std::size_t>(c.getBytes()));
}

//------------------------------------------------------------------------------

namespace
{

constexpr char const* scan_columns =
    "id, conversation_id, user_id, created_at, attachments, tool_calls, partial_tool_calls";
// PostgreSQL answers the parent check in the scan: one round trip per
// message would dominate the batch.
constexpr char const* pg_parents =
    ", EXISTS(SELECT 1 FROM conversations c WHERE c.id = m.conversation_id)::int, "
    "EXISTS(SELECT 1 FROM users u WHERE u.id = m.user_id)::int";
// Pages of an unbounded PostgreSQL scan (verify).
constexpr std::size_t pg_page = 20000;

} // namespace

message_scan::message_scan(storage::database& db, std::optional<std::string> cursor,
                           std::size_t limit, bool parents, std::int64_t until)
    : db_(db), pg_(db.is_postgres()), parents_(parents), limit_(limit), until_(until),
      after_(std::move(cursor))
{
    if (!pg_ && after_)
        std::from_chars(after_->data(), after_->data() + after_->size(), rowid_);
    page_ = pg_ ? (limit_ ? limit_ : pg_page) : 0;
    open_page();
}

message_scan::~message_scan()
{
    if (sel_)
        sel_->reset();
}

void message_scan::open_page()
{
    page_seen_ = 0;
    if (!pg_)
    {
        sel_ =
            &db_.prepare(std::string("SELECT rowid, ") + scan_columns +
                         " FROM messages WHERE rowid > ?1 AND rowid <= ?3 ORDER BY rowid LIMIT ?2");
        sel_->bind(1, rowid_);
        sel_->bind(3, until_);
        sel_->bind(2, limit_ ? static_cast<std::int64_t>(limit_) : std::int64_t{-1});
        return;
    }
    std::string sql = std::string("SELECT 0, ") + scan_columns + (parents_ ? pg_parents : "") +
                      " FROM messages m";
    sel_ = after_ ? &db_.prepare(sql + " WHERE id > ?2 ORDER BY id LIMIT ?1")
                  : &db_.prepare(sql + " ORDER BY id LIMIT ?1");
    auto const left = limit_ ? limit_ - seen_ : page_;
    sel_->bind(1, static_cast<std::int64_t>(std::min(page_, left)));
    if (after_)
        sel_->bind(2, *after_);
}

bool message_scan::next()
{
    if (end_)
        return false;
    if (limit_ && seen_ == limit_)
        return end_ = true, false;
    if (!sel_->executeStep())
    {
        // A full PostgreSQL page may have more behind it.
        if (!pg_ || page_seen_ < page_ || (limit_ && seen_ >= limit_))
            return end_ = true, false;
        sel_->reset();
        open_page();
        if (!sel_->executeStep())
            return end_ = true, false;
    }
    ++seen_;
    ++page_seen_;
    rowid_ = sel_->getColumn(0).getInt64();
    auto const id = sel_->getColumn(1);
    id_.assign(id.getText(), static_cast<std::size_t>(id.getBytes()));
    if (pg_)
        after_ = id_;
    return true;
}

std::string message_scan::cursor() const
{
    return pg_ ? id_ : std::to_string(rowid_);
}

std::pair<bool, bool> message_scan::parents(std::string const& conversation_id,
                                            std::string const& user_id)
{
    if (pg_)
        return {sel_->getColumn(8).getInt() != 0, sel_->getColumn(9).getInt() != 0};
    // Messages of a conversation are mostly adjacent in rowid order, and no
    // one can delete the parents inside the caller's write transaction.
    if (conversation_id == known_conversation_ && user_id == known_user_)
        return {true, true};
    auto& q = db_.prepare(
        "SELECT (SELECT 1 FROM conversations WHERE id = ?1), (SELECT 1 FROM users WHERE id = ?2)");
    q.bindNoCopy(1, conversation_id);
    q.bindNoCopy(2, user_id);
    q.executeStep();
    std::pair<bool, bool> out{!q.getColumn(0).isNull(), !q.getColumn(1).isNull()};
    q.reset();
    if (out.first && out.second)
    {
        known_conversation_ = conversation_id;
        known_user_ = user_id;
    }
    return out;
}

} // namespace chatstream::migrations::detail
