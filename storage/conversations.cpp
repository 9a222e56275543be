// Conversations: rows, keyset pages, partial updates, recount, generated
// titles and branching.
#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/rows.hpp"
#include "chatstream/storage/sources.hpp"
#include "detail/rows.hpp"

#include <algorithm>

namespace chatstream::storage
{

using namespace detail;

namespace
{

// Columns copied verbatim when a message is branched; the legacy arrays go
// along while they exist, so a not-yet-backfilled message keeps its calls.
constexpr char const* copied_message_columns =
    "role, content, partial_content, status, model, error, finish_reason, input_tokens, "
    "output_tokens, cost, tokens_per_second, first_token_at, generation_started_at, "
    "generation_completed_at, created_at, updated_at, reasoning, partial_reasoning, "
    "reasoning_tokens, thinking_started_at, thinking_completed_at";
constexpr char const* legacy_message_columns = ", attachments, tool_calls, partial_tool_calls";

std::string const& copy_tool_calls()
{
    static std::string const sql =
        std::string("INSERT INTO tool_calls(") + rows::tool_call_columns +
        ") SELECT ?1 || ':tc:' || tool_call_id, ?1, ?2, user_id, tool_call_id, tool_name, args, "
        "result, text_position, is_partial, timestamp, ?4 FROM tool_calls WHERE message_id = ?3";
    return sql;
}

std::string const& copy_attachments()
{
    static std::string const sql =
        std::string("INSERT INTO attachments(") + rows::attachment_columns +
        ") SELECT ?1 || ':att:' || position, ?1, ?2, user_id, position, type, name, storage_id, "
        "mime_type, size, metadata, ?4 FROM attachments WHERE message_id = ?3";
    return sql;
}

std::string const& copy_sources()
{
    static std::string const sql =
        std::string("INSERT INTO sources(") + sources::source_columns +
        ") SELECT ?1 || ':src:' || position, ?1, ?2, user_id, position, url_hash, url, title, "
        "snippet, published_date, provider, is_partial, ?4 FROM sources WHERE message_id = ?3";
    return sql;
}

} // namespace

void conversations::insert(database& db, conversation_row const& r)
{
    auto& q = db.prepare(
        "INSERT INTO conversations(id, user_id, title, model, pinned, archived, starred, "
        "message_count, system_prompt, last_message_at, created_at, updated_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, r.id);
    q.bind(2, r.user_id);
    q.bind(3, r.title);
    bind_opt(q, 4, r.model);
    q.bind(5, r.pinned ? 1 : 0);
    q.bind(6, r.archived ? 1 : 0);
    q.bind(7, r.starred ? 1 : 0);
    q.bind(8, r.message_count);
    bind_opt(q, 9, r.system_prompt);
    bind_opt(q, 10, r.last_message_at);
    q.bind(11, r.created_at);
    q.bind(12, r.updated_at);
    q.exec();
}

std::optional<conversation_row> conversations::get(database& db, std::string const& user_id,
                                                   std::string const& id)
{
    auto& q = db.prepare(std::string("SELECT ") + conversation_columns +
                         " FROM conversations WHERE id = ? AND user_id = ?");
    q.bind(1, id);
    q.bind(2, user_id);
    if (!q.executeStep())
        return std::nullopt;
    auto r = read_conversation(q);
    q.reset();
    return r;
}

page<conversation_row> conversations::list(database& db, std::string const& user_id,
                                           page_request const& req)
{
    page<conversation_row> out;
    auto const limit = std::clamp<std::size_t>(req.limit, 1, 500);
    // The first page has its own statement instead of a sentinel id greater
    // than every id: that would be a byte like 0xff, which PostgreSQL refuses
    // as text (and which sorts by collation there, not by byte).
    std::optional<std::pair<std::int64_t, std::string>> after;
    if (req.cursor)
        after = decode_cursor(*req.cursor);
    std::string const select =
        std::string("SELECT ") + conversation_columns + " FROM conversations WHERE user_id = ?1";
    std::string const order = " ORDER BY updated_at DESC, id DESC LIMIT ?2";
    auto& q =
        db.prepare(after ? select + " AND (updated_at, id) < (?3, ?4)" + order : select + order);
    q.bind(1, user_id);
    q.bind(2, static_cast<std::int64_t>(limit + 1));
    if (after)
    {
        q.bind(3, after->first);
        q.bind(4, after->second);
    }
    while (q.executeStep())
        out.rows.push_back(read_conversation(q));
    q.reset();
    if (out.rows.size() > limit)
    {
        out.rows.pop_back();
        out.next_cursor = encode_cursor(out.rows.back().updated_at, out.rows.back().id);
    }
    return out;
}

bool conversations::remove(database& db, std::string const& user_id, std::string const& id)
{
    // Legacy databases keep their original messages FK (no cascade) until
    // cleanup rebuilds the table, so delete children explicitly; on a new
    // schema this is what the cascade would do anyway.
    auto& own = db.prepare("SELECT 1 FROM conversations WHERE id = ? AND user_id = ?");
    own.bind(1, id);
    own.bind(2, user_id);
    bool const found = own.executeStep();
    own.reset();
    if (!found)
        return false;
    auto& m = db.prepare("DELETE FROM messages WHERE conversation_id = ?");
    m.bind(1, id);
    m.exec();
    auto& c = db.prepare("DELETE FROM conversations WHERE id = ? AND user_id = ?");
    c.bind(1, id);
    c.bind(2, user_id);
    return c.exec() > 0;
}

void conversations::touch_for_new_message(database& db, std::string const& id, std::int64_t at)
{
    auto& q = db.prepare("UPDATE conversations SET message_count = message_count + 1, "
                         "last_message_at = ?2, updated_at = ?2 WHERE id = ?1");
    q.bind(1, id);
    q.bind(2, at);
    q.exec();
}

std::optional<conversation_row> conversations::update(database& db, std::string const& user_id,
                                                      std::string const& id, patch const& p,
                                                      std::int64_t now)
{
    // One statement for every combination: an unset field binds NULL and a
    // flag says whether to take it, so the statement cache holds one entry.
    auto& q = db.prepare("UPDATE conversations SET "
                         "title = CASE WHEN ?3 THEN ?4 ELSE title END, "
                         "pinned = coalesce(?5, pinned), archived = coalesce(?6, archived), "
                         "starred = coalesce(?7, starred), "
                         "model = CASE WHEN ?8 THEN ?9 ELSE model END, "
                         "system_prompt = CASE WHEN ?10 THEN ?11 ELSE system_prompt END, "
                         "updated_at = ?12 WHERE id = ?1 AND user_id = ?2");
    auto bind_flag = [&](int i, std::optional<bool> const& v)
    {
        if (v)
            q.bind(i, *v ? 1 : 0);
        else
            q.bind(i);
    };
    q.bind(1, id);
    q.bind(2, user_id);
    q.bind(3, p.title ? 1 : 0);
    bind_opt(q, 4, p.title);
    bind_flag(5, p.pinned);
    bind_flag(6, p.archived);
    bind_flag(7, p.starred);
    q.bind(8, p.model ? 1 : 0);
    bind_opt(q, 9, p.model ? *p.model : std::nullopt);
    q.bind(10, p.system_prompt ? 1 : 0);
    bind_opt(q, 11, p.system_prompt ? *p.system_prompt : std::nullopt);
    q.bind(12, now);
    if (q.exec() == 0)
        return std::nullopt;
    return get(db, user_id, id);
}

void conversations::recount(database& db, std::string const& id, std::int64_t now)
{
    auto& q = db.prepare(
        "UPDATE conversations SET "
        "message_count = (SELECT count(*) FROM messages WHERE conversation_id = ?1), "
        "last_message_at = (SELECT max(created_at) FROM messages WHERE conversation_id = ?1), "
        "updated_at = ?2 WHERE id = ?1");
    q.bind(1, id);
    q.bind(2, now);
    q.exec();
}

bool conversations::set_generated_title(database& db, std::string const& id,
                                        std::string const& title, std::int64_t now)
{
    auto& q = db.prepare("UPDATE conversations SET title = ?2, updated_at = ?3 "
                         "WHERE id = ?1 AND title = 'New Chat'");
    q.bind(1, id);
    q.bind(2, title);
    q.bind(3, now);
    return q.exec() > 0;
}

conversation_row conversations::branch(database& db, std::string const& user_id,
                                       std::string const& message_id, std::string const& new_id,
                                       std::int64_t now)
{
    auto pivot = messages::get(db, user_id, message_id);
    if (!pivot)
        throw storage_error(errc::not_found, "no such message");
    if (!is_terminal_status(pivot->status))
        throw storage_error(errc::conflict, "message " + message_id + " is still generating");
    auto source = get(db, user_id, pivot->conversation_id);
    if (!source)
        throw storage_error(errc::not_found, "no such conversation");

    conversation_row c = *source;
    c.id = new_id;
    c.pinned = c.archived = c.starred = false;
    c.message_count = 0;
    c.last_message_at.reset();
    c.created_at = c.updated_at = now;
    insert(db, c);

    std::vector<std::string> old_ids;
    {
        auto& q = db.prepare("SELECT id FROM messages WHERE conversation_id = ?1 "
                             "AND (created_at, id) <= (?2, ?3) ORDER BY created_at, id");
        q.bind(1, pivot->conversation_id);
        q.bind(2, pivot->created_at);
        q.bind(3, pivot->id);
        while (q.executeStep())
            old_ids.push_back(q.getColumn(0).getString());
        q.reset();
    }
    std::string const legacy = has_legacy_columns(db) ? legacy_message_columns : "";
    // A message still generating is copied with the text it flushed so far
    // (appended chunks included) in partial_content.
    std::string copied_values = copied_message_columns;
    copied_values.replace(copied_values.find("partial_content"),
                          std::string_view("partial_content").size(),
                          partial_text_sql(db.dialect()));
    copied_values.replace(copied_values.find("partial_reasoning"),
                          std::string_view("partial_reasoning").size(),
                          partial_text_sql(db.dialect(), partial_channel::reasoning));
    std::string const copy_message =
        std::string("INSERT INTO messages(id, conversation_id, user_id, ") +
        copied_message_columns + legacy + ") SELECT ?1, ?2, user_id, " + copied_values + legacy +
        " FROM messages WHERE id = ?3";
    for (auto const& old_id : old_ids)
    {
        // New ids are generated in order, so the copies sort like the originals.
        auto const copy_id = core::new_id();
        auto& m = db.prepare(copy_message);
        m.bind(1, copy_id);
        m.bind(2, new_id);
        m.bind(3, old_id);
        m.exec();
        // Children keep their natural keys (tool_call_id, position) under
        // the copy; ?1 copy, ?2 new conversation, ?3 original, ?4 now.
        for (auto const* sql : {&copy_tool_calls(), &copy_attachments(), &copy_sources()})
        {
            auto& q = db.prepare(*sql);
            q.bind(1, copy_id);
            q.bind(2, new_id);
            q.bind(3, old_id);
            q.bind(4, now);
            q.exec();
        }
    }
    recount(db, new_id, now);
    return *get(db, user_id, new_id);
}

} // namespace chatstream::storage
