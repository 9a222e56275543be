// Conversation lifecycle writes (issue 12): partial updates, recount,
// generated titles, truncation for regenerate, and branching.
#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/ids.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/error.hpp"

namespace chatstream::storage
{
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

constexpr char const* copy_tool_calls =
    "INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, tool_name, "
    "args, result, text_position, is_partial, timestamp, created_at) "
    "SELECT ?1 || ':tc:' || tool_call_id, ?1, ?2, user_id, tool_call_id, tool_name, args, result, "
    "text_position, is_partial, timestamp, ?4 FROM tool_calls WHERE message_id = ?3";
constexpr char const* copy_attachments =
    "INSERT INTO attachments(id, message_id, conversation_id, user_id, position, type, name, "
    "storage_id, mime_type, size, metadata, created_at) "
    "SELECT ?1 || ':att:' || position, ?1, ?2, user_id, position, type, name, storage_id, "
    "mime_type, size, metadata, ?4 FROM attachments WHERE message_id = ?3";

} // namespace

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
        for (auto const* sql : {copy_tool_calls, copy_attachments})
        {
            auto& q = db.prepare(sql);
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
