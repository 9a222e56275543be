#include "detail/row_json.hpp"

#include <boost/json.hpp>

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

} // namespace

json::object to_json(storage::conversation_row const& c)
{
    return {{"id", c.id},
            {"title", c.title},
            {"model", opt(c.model)},
            {"pinned", c.pinned},
            {"archived", c.archived},
            {"starred", c.starred},
            {"messageCount", c.message_count},
            {"systemPrompt", opt(c.system_prompt)},
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
            {"reasoning", opt(m.reasoning)},
            {"partialReasoning", opt(m.partial_reasoning)},
            {"reasoningTokens", opt(m.reasoning_tokens)},
            {"thinkingStartedAt", opt(m.thinking_started_at)},
            {"thinkingCompletedAt", opt(m.thinking_completed_at)},
            {"createdAt", m.created_at},
            {"updatedAt", m.updated_at}};
}

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

json::object to_json(storage::sources::with_metadata const& w)
{
    auto const& s = w.source;
    json::object o{{"id", s.id},
                   {"messageId", s.message_id},
                   {"position", s.position},
                   {"url", s.url},
                   {"title", nullable(s.title)},
                   {"snippet", nullable(s.snippet)},
                   {"publishedDate", nullable(s.published_date)},
                   {"provider", s.provider},
                   {"isPartial", s.is_partial},
                   {"createdAt", s.created_at}};
    if (!w.metadata)
    {
        o["metadata"] = nullptr;
        return o;
    }
    auto const& m = *w.metadata;
    o["metadata"] = json::object{{"urlHash", m.url_hash},
                                 {"url", m.url},
                                 {"domain", m.domain},
                                 {"ogTitle", nullable(m.og_title)},
                                 {"ogDescription", nullable(m.og_description)},
                                 {"ogImage", nullable(m.og_image)},
                                 {"favicon", nullable(m.favicon)},
                                 {"fetchedAt", opt(m.fetched_at)},
                                 {"error", nullable(m.error)},
                                 {"accessCount", m.access_count}};
    return o;
}

json::object to_json(storage::message_row const& m,
                     std::vector<storage::sources::with_metadata> const& sources)
{
    auto o = to_json(m);
    json::array a;
    a.reserve(sources.size());
    for (auto const& s : sources)
        a.push_back(to_json(s));
    o["sources"] = std::move(a);
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

json::value nullable(std::optional<std::string> const& v)
{
    return opt(v);
}

json::object to_json(storage::usage::usage_row const& u)
{
    return {{"day", u.day},
            {"model", u.model},
            {"inputTokens", u.input_tokens},
            {"outputTokens", u.output_tokens},
            {"cost", u.cost},
            {"messageCount", u.message_count}};
}

frame conversation_inserted(storage::conversation_row const& c)
{
    return events::changed("conversation", "insert", c.id, c.id, json::serialize(to_json(c)));
}

frame message_inserted(storage::message_row const& m)
{
    return events::changed("message", "insert", m.id, m.conversation_id,
                           json::serialize(to_json(m)));
}

frame conversation_counters_changed(storage::conversation_row const& c)
{
    json::object o{{"messageCount", c.message_count},
                   {"lastMessageAt", opt(c.last_message_at)},
                   {"updatedAt", c.updated_at}};
    return events::changed("conversation", "update", c.id, c.id, json::serialize(o));
}

} // namespace chatstream::streaming::detail
