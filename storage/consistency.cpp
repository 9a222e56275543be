#include "chatstream/storage/consistency.hpp"

#include <fmt/format.h>

namespace chatstream::storage
{
namespace
{

std::int64_t scalar(database& db, std::string const& sql)
{
    auto& q = db.prepare(sql);
    q.executeStep();
    auto v = q.getColumn(0).getInt64();
    q.reset();
    return v;
}

// Each invariant is a query counting violating rows, with a sample id.
struct invariant
{
    char const* what;
    char const* sql; // SELECT count(*), min(id) FROM ... WHERE <violation>
};

constexpr invariant invariants[] = {
    {"tool calls left partial on a finished message",
     "SELECT count(*), min(t.id) FROM tool_calls t JOIN messages m ON m.id = t.message_id "
     "WHERE t.is_partial = 1 AND m.status NOT IN ('pending','generating')"},
    {"tool calls without a result on a finished message (stuck executing)",
     "SELECT count(*), min(t.id) FROM tool_calls t JOIN messages m ON m.id = t.message_id "
     "WHERE t.result IS NULL AND m.status NOT IN ('pending','generating')"},
    {"appended text chunks left on a finished message (not folded into content)",
     "SELECT count(*), min(k.message_id) FROM message_chunks k JOIN messages m ON m.id = "
     "k.message_id "
     "WHERE m.status NOT IN ('pending','generating')"},
    {"appended reasoning chunks left on a finished message (not folded into reasoning)",
     "SELECT count(*), min(k.message_id) FROM reasoning_chunks k JOIN messages m ON m.id = "
     "k.message_id "
     "WHERE m.status NOT IN ('pending','generating')"},
    {"messages with an unknown status",
     "SELECT count(*), min(id) FROM messages WHERE status NOT IN "
     "('pending','generating','complete','error','stopped','interrupted')"},
    {"tool calls whose conversation/user differ from their message's",
     "SELECT count(*), min(t.id) FROM tool_calls t JOIN messages m ON m.id = t.message_id "
     "WHERE t.conversation_id <> m.conversation_id OR t.user_id <> m.user_id"},
    {"attachments whose conversation/user differ from their message's",
     "SELECT count(*), min(a.id) FROM attachments a JOIN messages m ON m.id = a.message_id "
     "WHERE a.conversation_id <> m.conversation_id OR a.user_id <> m.user_id"},
    {"messages whose user differs from their conversation's",
     "SELECT count(*), min(m.id) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
     "WHERE m.user_id <> c.user_id"},
    {"conversations whose message_count is wrong",
     "SELECT count(*), min(c.id) FROM conversations c WHERE c.message_count <> "
     "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"},
    {"orphan tool calls",
     "SELECT count(*), min(id) FROM tool_calls WHERE message_id NOT IN (SELECT id FROM messages)"},
    {"orphan attachments",
     "SELECT count(*), min(id) FROM attachments WHERE message_id NOT IN (SELECT id FROM messages)"},
    {"orphan messages", "SELECT count(*), min(id) FROM messages WHERE conversation_id NOT IN "
                        "(SELECT id FROM conversations)"},
};

// Sources (docs/design.md §9): schema 0008 on; checked when the tables exist.
constexpr invariant source_invariants[] = {
    {"sources left partial on a finished message",
     "SELECT count(*), min(s.id) FROM sources s JOIN messages m ON m.id = s.message_id "
     "WHERE s.is_partial = 1 AND m.status NOT IN ('pending','generating')"},
    {"sources whose conversation/user differ from their message's",
     "SELECT count(*), min(s.id) FROM sources s JOIN messages m ON m.id = s.message_id "
     "WHERE s.conversation_id <> m.conversation_id OR s.user_id <> m.user_id"},
    {"orphan sources",
     "SELECT count(*), min(id) FROM sources WHERE message_id NOT IN (SELECT id FROM messages) "
     "OR url_hash NOT IN (SELECT url_hash FROM source_metadata)"},
    {"source metadata nothing cites",
     "SELECT count(*), min(url_hash) FROM source_metadata WHERE url_hash NOT IN "
     "(SELECT url_hash FROM sources)"},
    {"source metadata whose access_count is not its citations",
     "SELECT count(*), min(m.url_hash) FROM source_metadata m WHERE m.access_count <> "
     "(SELECT count(*) FROM sources s WHERE s.url_hash = m.url_hash)"},
    {"sources numbered with gaps (positions are not 1..n)",
     "SELECT count(*), min(message_id) FROM (SELECT message_id FROM sources GROUP BY message_id "
     "HAVING max(position) <> count(*) OR min(position) <> 1) g"},
};

void check(database& db, invariant const& inv, std::vector<std::string>& problems)
{
    auto& q = db.prepare(inv.sql);
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    if (n > 0)
        problems.push_back(
            fmt::format("{}: {} (e.g. {})", inv.what, n, q.getColumn(1).getString()));
    q.reset();
}

} // namespace

consistency_report check_consistency(database& db, bool offline)
{
    consistency_report r;
    // File-level checks exist only for SQLite. PostgreSQL enforces foreign
    // keys on every statement and has no cheap online equivalent of
    // quick_check (amcheck is an extension and a heavy scan), so there only
    // the logical invariants below run.
    if (!db.is_postgres())
    {
        {
            auto& q = db.prepare("PRAGMA quick_check");
            while (q.executeStep())
                if (auto line = q.getColumn(0).getString(); line != "ok")
                    r.problems.push_back("quick_check: " + line);
            q.reset();
        }
        {
            auto& q = db.prepare("PRAGMA foreign_key_check");
            while (q.executeStep())
                r.problems.push_back(fmt::format("foreign key violation in {} rowid {}",
                                                 q.getColumn(0).getString(),
                                                 q.getColumn(1).getInt64()));
            q.reset();
        }
    }
    r.conversations = scalar(db, "SELECT count(*) FROM conversations");
    r.messages = scalar(db, "SELECT count(*) FROM messages");
    r.tool_calls = scalar(db, "SELECT count(*) FROM tool_calls");
    r.attachments = scalar(db, "SELECT count(*) FROM attachments");
    r.unfinished =
        scalar(db, "SELECT count(*) FROM messages WHERE status IN ('pending','generating')");
    if (offline && r.unfinished > 0)
        r.problems.push_back(fmt::format(
            "{} messages still pending/generating with no server running", r.unfinished));
    auto const has_sources = db.has_table("sources");
    if (has_sources)
        r.sources = scalar(db, "SELECT count(*) FROM sources");
    for (auto const& inv : invariants)
        check(db, inv, r.problems);
    if (has_sources)
        for (auto const& inv : source_invariants)
            check(db, inv, r.problems);
    return r;
}

} // namespace chatstream::storage
