#include "detail/queries.hpp"

#include "chatstream/storage/error.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace chatstream::streaming::detail
{
namespace
{

namespace json = boost::json;

template <class T> json::value opt(std::optional<T> const& v)
{
    if (!v)
        return nullptr;
    return json::value_from(*v);
}

// Stored JSON text back into a value (it is valid by construction).
json::value json_text(std::optional<std::string> const& text)
{
    if (!text)
        return nullptr;
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    return ec ? json::value(*text) : v;
}

json::object to_json(storage::conversation_row const& c)
{
    return {{"id", c.id},
            {"title", c.title},
            {"model", opt(c.model)},
            {"pinned", c.pinned},
            {"archived", c.archived},
            {"starred", c.starred},
            {"messageCount", c.message_count},
            {"lastMessageAt", opt(c.last_message_at)},
            {"createdAt", c.created_at},
            {"updatedAt", c.updated_at}};
}

json::object to_json(storage::message_row const& m)
{
    return {{"id", m.id},
            {"conversationId", m.conversation_id},
            {"role", m.role},
            {"content", m.content},
            {"partialContent", opt(m.partial_content)},
            {"status", m.status},
            {"model", opt(m.model)},
            {"error", opt(m.error)},
            {"finishReason", opt(m.finish_reason)},
            {"inputTokens", opt(m.input_tokens)},
            {"outputTokens", opt(m.output_tokens)},
            {"cost", opt(m.cost)},
            {"tokensPerSecond", opt(m.tokens_per_second)},
            {"firstTokenAt", opt(m.first_token_at)},
            {"generationStartedAt", opt(m.generation_started_at)},
            {"generationCompletedAt", opt(m.generation_completed_at)},
            {"createdAt", m.created_at},
            {"updatedAt", m.updated_at}};
}

// The UI shape: arguments/result as JSON *strings*, as the chat UI consumes.
json::object to_json(storage::tool_calls::ui_tool_call const& t)
{
    json::object o{{"id", t.id},
                   {"name", t.name},
                   {"arguments", t.arguments},
                   {"timestamp", t.timestamp},
                   {"textPosition", opt(t.text_position)},
                   {"isPartial", t.is_partial}};
    if (t.result)
        o["result"] = *t.result;
    return o;
}

json::object to_json(storage::attachment_row const& a)
{
    return {{"id", a.id},
            {"messageId", a.message_id},
            {"position", a.position},
            {"type", a.type},
            {"name", a.name},
            {"storageId", a.storage_id},
            {"mimeType", a.mime_type},
            {"size", a.size},
            {"metadata", json_text(a.metadata)},
            {"createdAt", a.created_at}};
}

template <class Rows> json::array array_of(Rows const& rows)
{
    json::array out;
    out.reserve(rows.size());
    for (auto const& r : rows)
        out.push_back(to_json(r));
    return out;
}

frame not_found(query_request const& q, std::string const& what)
{
    return events::error(
        q.id, q.message_id ? std::optional<std::string_view>(*q.message_id) : std::nullopt,
        wire_error::not_found, "no such " + what);
}

frame run(storage::database& db, std::string const& user, query_request const& q)
{
    storage::page_request page{q.cursor, q.limit};
    switch (q.name)
    {
    case query_name::list_conversations:
    {
        auto p = storage::conversations::list(db, user, page);
        json::object data{{"conversations", array_of(p.rows)}, {"nextCursor", opt(p.next_cursor)}};
        return events::result(q.id, json::serialize(data));
    }
    case query_name::list_messages:
    {
        if (!storage::conversations::get(db, user, *q.conversation_id))
            return not_found(q, "conversation");
        auto p = storage::messages::list(db, user, *q.conversation_id, page);
        json::object data{{"messages", array_of(p.rows)}, {"nextCursor", opt(p.next_cursor)}};
        return events::result(q.id, json::serialize(data));
    }
    case query_name::get_message:
    {
        auto m = storage::messages::get(db, user, *q.message_id);
        if (!m)
            return not_found(q, "message");
        return events::result(q.id, json::serialize(to_json(*m)));
    }
    case query_name::get_tool_calls:
    {
        if (!storage::messages::get(db, user, *q.message_id))
            return not_found(q, "message");
        auto rows =
            storage::tool_calls::list_for_message(db, user, *q.message_id, q.include_partial);
        return events::result(q.id, json::serialize(array_of(rows)));
    }
    case query_name::get_attachments:
    {
        if (!storage::messages::get(db, user, *q.message_id))
            return not_found(q, "message");
        auto rows = storage::attachments::list_for_message(db, user, *q.message_id);
        return events::result(q.id, json::serialize(array_of(rows)));
    }
    }
    return events::error(q.id, std::nullopt, wire_error::bad_request, "unknown query");
}

} // namespace

void run_query(storage::read_pool& reads, std::string user_id, query_request q,
               std::function<void(frame)> reply)
{
    reads.post(
        [user_id = std::move(user_id), q = std::move(q),
         reply = std::move(reply)](storage::database& db)
        {
            frame out;
            try
            {
                out = run(db, user_id, q);
            }
            catch (storage::storage_error const& e)
            {
                out = events::error(q.id, std::nullopt, to_wire_error(make_error_code(e.code())),
                                    e.what());
            }
            catch (std::exception const& e)
            {
                spdlog::error("query failed: {}", e.what());
                out = events::error(q.id, std::nullopt, wire_error::internal, "query failed");
            }
            reply(std::move(out));
        });
}

} // namespace chatstream::streaming::detail
