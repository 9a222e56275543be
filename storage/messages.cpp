// Messages: rows, pages, history, partial text (whole flushes and appended
// chunks), completion, interruption, removal, truncation and search.
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/sources.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/error.hpp"
#include "detail/rows.hpp"

#include <algorithm>

namespace chatstream::storage
{

using namespace detail;

void messages::insert(database& db, message_row const& r)
{
    auto& q = db.prepare(
        "INSERT INTO messages(id, conversation_id, user_id, role, content, partial_content, "
        "status, "
        "model, error, finish_reason, input_tokens, output_tokens, cost, tokens_per_second, "
        "first_token_at, generation_started_at, generation_completed_at, created_at, updated_at, "
        "reasoning, partial_reasoning, reasoning_tokens, thinking_started_at, "
        "thinking_completed_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, r.id);
    q.bind(2, r.conversation_id);
    q.bind(3, r.user_id);
    q.bind(4, r.role);
    q.bind(5, r.content);
    bind_opt(q, 6, r.partial_content);
    q.bind(7, r.status);
    bind_opt(q, 8, r.model);
    bind_opt(q, 9, r.error);
    bind_opt(q, 10, r.finish_reason);
    bind_opt(q, 11, r.input_tokens);
    bind_opt(q, 12, r.output_tokens);
    bind_opt(q, 13, r.cost);
    bind_opt(q, 14, r.tokens_per_second);
    bind_opt(q, 15, r.first_token_at);
    bind_opt(q, 16, r.generation_started_at);
    bind_opt(q, 17, r.generation_completed_at);
    q.bind(18, r.created_at);
    q.bind(19, r.updated_at);
    bind_opt(q, 20, r.reasoning);
    bind_opt(q, 21, r.partial_reasoning);
    bind_opt(q, 22, r.reasoning_tokens);
    bind_opt(q, 23, r.thinking_started_at);
    bind_opt(q, 24, r.thinking_completed_at);
    q.exec();
    conversations::touch_for_new_message(db, r.conversation_id, r.created_at);
}

std::optional<message_row> messages::get(database& db, std::string const& user_id,
                                         std::string const& id)
{
    auto& q =
        db.prepare("SELECT " + message_columns(db) + " FROM messages WHERE id = ? AND user_id = ?");
    q.bind(1, id);
    q.bind(2, user_id);
    if (!q.executeStep())
        return std::nullopt;
    auto r = read_message(q);
    q.reset();
    return r;
}

std::optional<message_row> messages::get_unscoped(database& db, std::string const& id)
{
    auto& q = db.prepare("SELECT " + message_columns(db) + " FROM messages WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep())
        return std::nullopt;
    auto r = read_message(q);
    q.reset();
    return r;
}

page<message_row> messages::list(database& db, std::string const& user_id,
                                 std::string const& conversation_id, page_request const& req)
{
    page<message_row> out;
    auto const limit = std::clamp<std::size_t>(req.limit, 1, 500);
    std::int64_t key = INT64_MIN;
    std::string after_id;
    if (req.cursor)
        std::tie(key, after_id) = decode_cursor(*req.cursor);
    auto& q = db.prepare("SELECT " + message_columns(db) +
                         " FROM messages WHERE conversation_id = ? AND user_id = ?"
                         " AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?");
    q.bind(1, conversation_id);
    q.bind(2, user_id);
    q.bind(3, key);
    q.bind(4, after_id);
    q.bind(5, static_cast<std::int64_t>(limit + 1));
    while (q.executeStep())
        out.rows.push_back(read_message(q));
    q.reset();
    if (out.rows.size() > limit)
    {
        out.rows.pop_back();
        out.next_cursor = encode_cursor(out.rows.back().created_at, out.rows.back().id);
    }
    return out;
}

std::vector<message_row> messages::history(database& db, std::string const& conversation_id)
{
    std::vector<message_row> out;
    auto& q = db.prepare("SELECT " + message_columns(db) +
                         " FROM messages WHERE conversation_id = ? ORDER BY created_at, id");
    q.bind(1, conversation_id);
    while (q.executeStep())
        out.push_back(read_message(q));
    q.reset();
    return out;
}

void messages::mark_generating(database& db, std::string const& id, std::int64_t started_at)
{
    auto& q = db.prepare("UPDATE messages SET status = 'generating', generation_started_at = ?2, "
                         "updated_at = ?2 WHERE id = ?1 AND status = 'pending'");
    q.bind(1, id);
    q.bind(2, started_at);
    q.exec();
}

void messages::flush_partial(database& db, std::string const& id,
                             std::string const& partial_content,
                             std::optional<std::int64_t> first_token_at, std::int64_t now)
{
    // The status guard is what keeps a late flush from resurrecting a
    // message that was already stopped, failed or completed.
    auto& q = db.prepare(
        "UPDATE messages SET partial_content = ?2, first_token_at = coalesce(first_token_at, ?3), "
        "status = 'generating', updated_at = ?4 WHERE id = ?1 AND status IN "
        "('pending','generating')");
    q.bind(1, id);
    q.bind(2, partial_content);
    bind_opt(q, 3, first_token_at);
    q.bind(4, now);
    if (q.exec() > 0)
        drop_chunks(db, id); // the whole text replaces what was appended
}

namespace
{

// One live flush of one channel: the new bytes as a chunk keyed by where
// they start (a flush that runs twice stores them once), and on the first
// flush the moment the channel began, with the `generating` status. Never
// touches a terminal message.
bool append_chunk(database& db, std::string const& id, partial_channel ch, std::int64_t byte_start,
                  std::string_view text, std::optional<std::int64_t> first_at, std::int64_t now)
{
    bool const content = ch == partial_channel::content;
    if (first_at)
    {
        auto& u = db.prepare(
            content
                ? "UPDATE messages SET first_token_at = ?2, status = 'generating', updated_at = ?3 "
                  "WHERE id = ?1 AND status IN ('pending','generating') AND first_token_at IS NULL"
                : "UPDATE messages SET thinking_started_at = ?2, status = 'generating', "
                  "updated_at = ?3 WHERE id = ?1 AND status IN ('pending','generating') "
                  "AND thinking_started_at IS NULL");
        u.bind(1, id);
        u.bind(2, *first_at);
        u.bind(3, now);
        u.exec();
    }
    static std::string const insert[2] = {
        "INSERT INTO message_chunks(message_id, byte_start, text) SELECT ?1, CAST(?2 AS BIGINT), "
        "?3 "
        "WHERE EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND status IN ('pending','generating')) "
        "ON CONFLICT DO NOTHING",
        "INSERT INTO reasoning_chunks(message_id, byte_start, text) SELECT ?1, CAST(?2 AS BIGINT), "
        "?3 "
        "WHERE EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND status IN ('pending','generating')) "
        "ON CONFLICT DO NOTHING"};
    auto& q = db.prepare(insert[content ? 0 : 1]);
    q.bind(1, id);
    q.bind(2, byte_start);
    q.bind(3, std::string(text));
    return q.exec() > 0;
}

} // namespace

bool messages::append_partial(database& db, std::string const& id, std::int64_t byte_start,
                              std::string_view text, std::optional<std::int64_t> first_token_at,
                              std::int64_t now)
{
    return append_chunk(db, id, partial_channel::content, byte_start, text, first_token_at, now);
}

bool messages::append_partial_reasoning(database& db, std::string const& id,
                                        std::int64_t byte_start, std::string_view text,
                                        std::optional<std::int64_t> thinking_started_at,
                                        std::int64_t now)
{
    return append_chunk(db, id, partial_channel::reasoning, byte_start, text, thinking_started_at,
                        now);
}

std::string messages::read_bytes(database& db, std::string const& id, bool reasoning,
                                 std::int64_t byte_start, std::int64_t length)
{
    // Bytes, not characters: SQLite's substr counts bytes on a BLOB;
    // PostgreSQL's on bytea, which comes back hex-encoded (a cut inside a
    // code point is not valid text on the wire).
    static char const* const sql[2][2] = {
        {"SELECT substr(CAST(content AS BLOB), ?2 + 1, ?3) FROM messages WHERE id = ?1",
         "SELECT substr(CAST(reasoning AS BLOB), ?2 + 1, ?3) FROM messages WHERE id = ?1"},
        {"SELECT encode(substring(convert_to(content, 'UTF8') FROM CAST(?2 AS INTEGER) + 1 "
         "FOR CAST(?3 AS INTEGER)), 'hex') FROM messages WHERE id = ?1",
         "SELECT encode(substring(convert_to(reasoning, 'UTF8') FROM CAST(?2 AS INTEGER) + 1 "
         "FOR CAST(?3 AS INTEGER)), 'hex') FROM messages WHERE id = ?1"}};
    bool const pg = db.is_postgres();
    auto& q = db.prepare(sql[pg ? 1 : 0][reasoning ? 1 : 0]);
    q.bind(1, id);
    q.bind(2, byte_start);
    q.bind(3, length);
    std::string out;
    if (q.executeStep() && !q.getColumn(0).isNull())
        out = q.getColumn(0).getString();
    q.reset();
    if (!pg)
        return out;
    std::string bytes;
    bytes.reserve(out.size() / 2);
    auto const nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < out.size(); i += 2)
        bytes += static_cast<char>(nibble(out[i]) << 4 | nibble(out[i + 1]));
    return bytes;
}

void messages::drop_chunks(database& db, std::string const& id)
{
    for (auto const* sql : {"DELETE FROM message_chunks WHERE message_id = ?",
                            "DELETE FROM reasoning_chunks WHERE message_id = ?"})
    {
        auto& q = db.prepare(sql);
        q.bind(1, id);
        q.exec();
    }
}

bool messages::finish(database& db, std::string const& id, completion const& c)
{
    if (!is_terminal_status(c.status))
        throw storage_error(errc::invalid_argument, "finish needs a terminal status");
    auto& q = db.prepare(
        "UPDATE messages SET status = ?2, content = ?3, partial_content = NULL, error = ?4, "
        "finish_reason = ?5, input_tokens = ?6, output_tokens = ?7, cost = ?8, "
        "tokens_per_second = ?9, first_token_at = coalesce(first_token_at, ?10), "
        "generation_completed_at = ?11, updated_at = ?11, reasoning = coalesce(?12, reasoning), "
        "partial_reasoning = NULL, reasoning_tokens = coalesce(?13, reasoning_tokens), "
        "thinking_started_at = coalesce(thinking_started_at, ?14), "
        "thinking_completed_at = coalesce(?15, thinking_completed_at) "
        "WHERE id = ?1 AND status IN ('pending','generating')");
    q.bind(1, id);
    q.bind(2, c.status);
    q.bind(3, c.content);
    bind_opt(q, 4, c.error);
    bind_opt(q, 5, c.finish_reason);
    bind_opt(q, 6, c.input_tokens);
    bind_opt(q, 7, c.output_tokens);
    bind_opt(q, 8, c.cost);
    bind_opt(q, 9, c.tokens_per_second);
    bind_opt(q, 10, c.first_token_at);
    q.bind(11, c.completed_at);
    bind_opt(q, 12, c.reasoning);
    bind_opt(q, 13, c.reasoning_tokens);
    bind_opt(q, 14, c.thinking_started_at);
    bind_opt(q, 15, c.thinking_completed_at);
    bool const changed = q.exec() > 0;
    if (changed)
        drop_chunks(db, id);
    if (changed)
    {
        tool_calls::finalize(db, id,
                             c.status == status::complete ? "tool call did not complete"
                                                          : "generation " + c.status);
        sources::finalize(db, id);
    }
    return changed;
}

bool messages::interrupt(database& db, std::string const& id, std::int64_t now)
{
    // What was thought is kept like what was said.
    auto const promote = [](dialect d)
    {
        return std::string("UPDATE messages SET status = 'interrupted', content = coalesce(") +
               partial_text_sql(d) + ", content), reasoning = coalesce(" +
               partial_text_sql(d, partial_channel::reasoning) + ", reasoning), ";
    };
    static std::string const promotes[2] = {promote(dialect::sqlite), promote(dialect::postgres)};
    auto& u = db.prepare(
        promotes[db.is_postgres() ? 1 : 0] +
        "partial_content = NULL, partial_reasoning = NULL, finish_reason = 'interrupted', "
        "error = 'server restarted during generation', generation_completed_at = ?2, "
        "updated_at = ?2 WHERE id = ?1 AND status IN ('pending','generating')");
    u.bind(1, id);
    u.bind(2, now);
    if (u.exec() == 0)
        return false;
    drop_chunks(db, id);
    tool_calls::finalize(db, id, "generation interrupted");
    sources::finalize(db, id);
    return true;
}

std::size_t messages::interrupt_unfinished(database& db, std::int64_t now)
{
    std::vector<std::string> ids;
    {
        auto& q = db.prepare("SELECT id FROM messages WHERE status IN ('pending','generating')");
        while (q.executeStep())
            ids.push_back(q.getColumn(0).getString());
        q.reset();
    }
    std::size_t n = 0;
    for (auto const& id : ids)
        n += interrupt(db, id, now) ? 1 : 0;
    return n;
}

bool messages::remove(database& db, std::string const& user_id, std::string const& id)
{
    auto& q =
        db.prepare("DELETE FROM messages WHERE id = ? AND user_id = ? RETURNING conversation_id");
    q.bind(1, id);
    q.bind(2, user_id);
    if (!q.executeStep())
        return false;
    auto conversation_id = q.getColumn(0).getString();
    while (q.executeStep())
    {
    }
    q.reset();
    // Explicit child deletes for legacy databases without the cascade.
    auto& t = db.prepare("DELETE FROM tool_calls WHERE message_id = ?");
    t.bind(1, id);
    t.exec();
    auto& a = db.prepare("DELETE FROM attachments WHERE message_id = ?");
    a.bind(1, id);
    a.exec();
    conversations::recount(db, conversation_id, core::now_ms());
    return true;
}

std::vector<std::string> messages::remove_from(database& db, message_row const& from,
                                               std::int64_t now)
{
    std::vector<std::string> ids;
    {
        auto& q = db.prepare("SELECT id FROM messages WHERE conversation_id = ?1 "
                             "AND (created_at, id) >= (?2, ?3) ORDER BY created_at, id");
        q.bind(1, from.conversation_id);
        q.bind(2, from.created_at);
        q.bind(3, from.id);
        while (q.executeStep())
            ids.push_back(q.getColumn(0).getString());
        q.reset();
    }
    for (auto const& id : ids)
    {
        // Children first: legacy databases have no cascade on messages.
        for (auto const* sql :
             {"DELETE FROM tool_calls WHERE message_id = ?",
              "DELETE FROM attachments WHERE message_id = ?", "DELETE FROM messages WHERE id = ?"})
        {
            auto& d = db.prepare(sql);
            d.bind(1, id);
            d.exec();
        }
    }
    conversations::recount(db, from.conversation_id, now);
    return ids;
}

namespace messages
{

namespace
{

// LIKE pattern matching @p phrase anywhere, with its wildcards taken literally.
std::string contains_pattern(std::string_view phrase)
{
    std::string p = "%";
    for (char c : phrase)
    {
        if (c == '%' || c == '_' || c == '\\')
            p.push_back('\\');
        p.push_back(c);
    }
    p.push_back('%');
    return p;
}

} // namespace

std::vector<search_hit> search(database& db, std::string const& user_id,
                               std::string const& exclude_id, std::string_view phrase,
                               std::int64_t limit)
{
    // Scoped twice to the caller (conversation and message owner), so a row
    // of another user can never come back even if the two ever disagreed.
    static constexpr char const* sqlite_sql =
        "SELECT m.id, m.conversation_id, c.title, m.role, m.content, m.created_at "
        "FROM conversations c JOIN messages m ON m.conversation_id = c.id "
        "WHERE c.user_id = ?1 AND m.user_id = ?1 AND m.status NOT IN ('pending','generating') "
        "AND m.id <> ?2 AND m.content LIKE ?3 ESCAPE '\\' "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?4";
    static constexpr char const* postgres_sql =
        "SELECT m.id, m.conversation_id, c.title, m.role, m.content, m.created_at "
        "FROM conversations c JOIN messages m ON m.conversation_id = c.id "
        "WHERE c.user_id = ?1 AND m.user_id = ?1 AND m.status NOT IN ('pending','generating') "
        "AND m.id <> ?2 AND m.content ILIKE ?3 ESCAPE '\\' "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?4";
    auto& q = db.prepare(db.dialect() == dialect::postgres ? postgres_sql : sqlite_sql);
    q.bind(1, user_id);
    q.bind(2, exclude_id);
    q.bind(3, contains_pattern(phrase));
    q.bind(4, limit);
    std::vector<search_hit> hits;
    while (q.executeStep())
        hits.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                        q.getColumn(2).getString(), q.getColumn(3).getString(),
                        q.getColumn(4).getString(), q.getColumn(5).getInt64()});
    q.reset();
    return hits;
}

} // namespace messages

} // namespace chatstream::storage
