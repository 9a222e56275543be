#include "chatstream/streaming/protocol.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"

#include <simdjson.h>

#include <charconv>

namespace chatstream::streaming
{
namespace
{

namespace dom = simdjson::dom;

constexpr std::size_t max_id_bytes = max_identifier_bytes;
constexpr std::size_t max_attachments = 32;

// Thrown inside parse() only and caught there: turns a validation failure
// into a protocol_error without threading results through every helper.
struct invalid
{
    wire_error code;
    std::string message;
};

[[noreturn]] void bad(std::string message)
{
    throw invalid{wire_error::bad_request, std::move(message)};
}

char const* type_name(dom::element const& e)
{
    switch (e.type())
    {
    case dom::element_type::ARRAY:
        return "array";
    case dom::element_type::OBJECT:
        return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
        return "number";
    case dom::element_type::STRING:
        return "string";
    case dom::element_type::BOOL:
        return "boolean";
    case dom::element_type::NULL_VALUE:
        return "null";
    }
    return "value";
}

std::optional<dom::element> field(dom::object const& o, std::string_view key)
{
    dom::element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS)
        return std::nullopt;
    return e;
}

std::optional<std::string> opt_string(dom::object const& o, std::string_view key,
                                      std::size_t max_bytes = max_id_bytes)
{
    auto e = field(o, key);
    if (!e || e->is_null())
        return std::nullopt;
    std::string_view s;
    if (e->get(s) != simdjson::SUCCESS)
        bad("field '" + std::string(key) + "' must be a string, got " + type_name(*e));
    if (s.size() > max_bytes)
        bad("field '" + std::string(key) + "' is longer than " + std::to_string(max_bytes) +
            " bytes");
    return std::string(s);
}

std::string req_string(dom::object const& o, std::string_view key,
                       std::size_t max_bytes = max_id_bytes)
{
    auto s = opt_string(o, key, max_bytes);
    if (!s)
        bad("missing field '" + std::string(key) + "'");
    if (s->empty())
        bad("field '" + std::string(key) + "' must not be empty");
    return std::move(*s);
}

std::optional<std::int64_t> opt_int(dom::object const& o, std::string_view key)
{
    auto e = field(o, key);
    if (!e || e->is_null())
        return std::nullopt;
    std::int64_t v = 0;
    if (e->get(v) != simdjson::SUCCESS)
        bad("field '" + std::string(key) + "' must be an integer, got " + type_name(*e));
    return v;
}

std::optional<bool> opt_bool(dom::object const& o, std::string_view key)
{
    auto e = field(o, key);
    if (!e || e->is_null())
        return std::nullopt;
    bool v = false;
    if (e->get(v) != simdjson::SUCCESS)
        bad("field '" + std::string(key) + "' must be a boolean, got " + type_name(*e));
    return v;
}

request_id read_id(dom::object const& o)
{
    auto e = field(o, "id");
    if (!e || e->is_null())
        return std::nullopt;
    std::string_view s;
    std::int64_t i = 0;
    if (e->get(s) == simdjson::SUCCESS)
    {
        if (s.size() > max_id_bytes)
            bad("field 'id' is longer than 128 bytes");
        return core::json_string(s);
    }
    if (e->get(i) == simdjson::SUCCESS)
        return std::to_string(i);
    bad(std::string("field 'id' must be a string or an integer, got ") + type_name(*e));
}

attachment_input read_attachment(dom::element const& e, std::size_t index)
{
    dom::object o;
    auto const where = "attachments[" + std::to_string(index) + "]";
    if (e.get(o) != simdjson::SUCCESS)
        bad(where + " must be an object");
    attachment_input a;
    try
    {
        a.type = req_string(o, "type");
        if (a.type != "image" && a.type != "file" && a.type != "audio")
            bad("'type' must be image, file or audio");
        a.name = req_string(o, "name", 1024);
        a.storage_id = req_string(o, "storageId", 1024);
        a.mime_type = req_string(o, "mimeType", 255);
        auto size = opt_int(o, "size");
        if (!size)
            bad("missing field 'size'");
        if (*size < 0)
            bad("'size' must not be negative");
        a.size = *size;
        if (auto m = field(o, "metadata"); m && !m->is_null())
        {
            if (!m->is_object())
                bad("'metadata' must be an object");
            a.metadata = simdjson::minify(*m);
        }
    }
    catch (invalid& i)
    {
        i.message = where + ": " + i.message;
        throw;
    }
    return a;
}

client_request parse_generate(dom::object const& o, request_id id)
{
    generate_request r;
    r.id = std::move(id);
    r.conversation_id = opt_string(o, "conversationId");
    if (r.conversation_id && r.conversation_id->empty())
        bad("field 'conversationId' must not be empty");
    r.content = req_string(o, "content", 1u << 20);
    r.model = opt_string(o, "model");
    if (auto a = field(o, "attachments"); a && !a->is_null())
    {
        dom::array arr;
        if (a->get(arr) != simdjson::SUCCESS)
            bad(std::string("field 'attachments' must be an array, got ") + type_name(*a));
        if (arr.size() > max_attachments)
            bad("at most " + std::to_string(max_attachments) + " attachments per message");
        std::size_t i = 0;
        for (auto e : arr)
            r.attachments.push_back(read_attachment(e, i++));
    }
    return r;
}

client_request parse_subscribe(dom::object const& o, request_id id)
{
    subscribe_request r;
    r.id = std::move(id);
    r.message_id = req_string(o, "messageId");
    if (auto off = opt_int(o, "fromOffset"))
    {
        if (*off < 0)
            bad("field 'fromOffset' must not be negative");
        r.from_offset = static_cast<std::uint64_t>(*off);
    }
    if (auto off = opt_int(o, "fromReasoningOffset"))
    {
        if (*off < 0)
            bad("field 'fromReasoningOffset' must not be negative");
        r.from_reasoning_offset = static_cast<std::uint64_t>(*off);
    }
    return r;
}

// A UTC day `YYYY-MM-DD` (compared as text against usage.day).
std::optional<std::string> opt_day(dom::object const& o, std::string_view key)
{
    auto d = opt_string(o, key, 10);
    if (!d)
        return d;
    auto digits = [&](std::size_t from, std::size_t n)
    {
        for (std::size_t i = from; i < from + n; ++i)
            if ((*d)[i] < '0' || (*d)[i] > '9')
                return false;
        return true;
    };
    if (d->size() != 10 || (*d)[4] != '-' || (*d)[7] != '-' || !digits(0, 4) || !digits(5, 2) ||
        !digits(8, 2))
        bad("field '" + std::string(key) + "' must be a UTC day YYYY-MM-DD");
    return d;
}

// A string that may be JSON null (= clear it); absent = leave unchanged.
std::optional<std::optional<std::string>>
nullable_string(dom::object const& o, std::string_view key, std::size_t max_bytes)
{
    auto e = field(o, key);
    if (!e)
        return std::nullopt;
    if (e->is_null())
        return std::optional<std::string>();
    return opt_string(o, key, max_bytes);
}

client_request parse_mutate(dom::object const& o, request_id id)
{
    mutate_request r;
    r.id = std::move(id);
    auto const name = req_string(o, "name");
    if (name == "createConversation")
        r.name = mutation_name::create_conversation;
    else if (name == "updateConversation")
        r.name = mutation_name::update_conversation;
    else if (name == "deleteConversation")
        r.name = mutation_name::delete_conversation;
    else if (name == "deleteMessage")
        r.name = mutation_name::delete_message;
    else if (name == "regenerate")
        r.name = mutation_name::regenerate;
    else if (name == "retry")
        r.name = mutation_name::retry;
    else if (name == "branch")
        r.name = mutation_name::branch;
    else
        bad("unknown mutation '" + name + "'");

    dom::object args;
    if (auto a = field(o, "args"); a && !a->is_null())
    {
        if (a->get(args) != simdjson::SUCCESS)
            bad(std::string("field 'args' must be an object, got ") + type_name(*a));
    }
    else if (r.name == mutation_name::create_conversation)
        return r;
    else
        bad("missing field 'args'");

    try
    {
        switch (r.name)
        {
        case mutation_name::update_conversation:
            r.conversation_id = req_string(args, "conversationId");
            [[fallthrough]];
        case mutation_name::create_conversation:
            r.title = opt_string(args, "title", 1024);
            if (r.title && r.title->empty())
                bad("field 'title' must not be empty");
            r.model = nullable_string(args, "model", max_id_bytes);
            r.system_prompt = nullable_string(args, "systemPrompt", 64 * 1024);
            if (r.name == mutation_name::update_conversation)
            {
                r.pinned = opt_bool(args, "pinned");
                r.archived = opt_bool(args, "archived");
                r.starred = opt_bool(args, "starred");
                if (!r.title && !r.model && !r.system_prompt && !r.pinned && !r.archived &&
                    !r.starred)
                    bad("nothing to update: give title, pinned, archived, starred, model or "
                        "systemPrompt");
            }
            break;
        case mutation_name::delete_conversation:
            r.conversation_id = req_string(args, "conversationId");
            break;
        case mutation_name::delete_message:
        case mutation_name::regenerate:
        case mutation_name::retry:
        case mutation_name::branch:
            r.message_id = req_string(args, "messageId");
            break;
        }
    }
    catch (invalid& i)
    {
        i.message = "args: " + i.message;
        throw;
    }
    return r;
}

client_request parse_query(dom::object const& o, request_id id)
{
    query_request r;
    r.id = std::move(id);
    auto const name = req_string(o, "name");
    if (name == "listConversations")
        r.name = query_name::list_conversations;
    else if (name == "listMessages")
        r.name = query_name::list_messages;
    else if (name == "getMessage")
        r.name = query_name::get_message;
    else if (name == "getToolCalls")
        r.name = query_name::get_tool_calls;
    else if (name == "getAttachments")
        r.name = query_name::get_attachments;
    else if (name == "getUsage")
        r.name = query_name::get_usage;
    else if (name == "getSources")
        r.name = query_name::get_sources;
    else
        bad("unknown query '" + name + "'");

    dom::object args;
    if (auto a = field(o, "args"); a && !a->is_null())
    {
        if (a->get(args) != simdjson::SUCCESS)
            bad(std::string("field 'args' must be an object, got ") + type_name(*a));
    }
    else if (r.name != query_name::list_conversations && r.name != query_name::get_usage)
        bad("missing field 'args'");
    else
        return r;

    try
    {
        switch (r.name)
        {
        case query_name::list_messages:
            r.conversation_id = req_string(args, "conversationId");
            break;
        case query_name::get_message:
        case query_name::get_attachments:
        case query_name::get_sources:
            r.message_id = req_string(args, "messageId");
            break;
        case query_name::get_tool_calls:
            r.message_id = req_string(args, "messageId");
            r.include_partial = opt_bool(args, "includePartial").value_or(false);
            break;
        case query_name::get_usage:
            r.from_day = opt_day(args, "from");
            r.to_day = opt_day(args, "to");
            break;
        case query_name::list_conversations:
            break;
        }
        if (r.name == query_name::list_conversations || r.name == query_name::list_messages)
        {
            r.cursor = opt_string(args, "cursor", 512);
            if (auto limit = opt_int(args, "limit"))
            {
                if (*limit < 1 || *limit > 500)
                    bad("'limit' must be between 1 and 500");
                r.limit = static_cast<std::size_t>(*limit);
            }
        }
    }
    catch (invalid& i)
    {
        i.message = "args: " + i.message;
        throw;
    }
    return r;
}

} // namespace

//------------------------------------------------------------------------------

struct request_parser::impl
{
    dom::parser parser;
};

request_parser::request_parser() : impl_(std::make_unique<impl>()) {}
request_parser::~request_parser() = default;
request_parser::request_parser(request_parser&&) noexcept = default;
request_parser& request_parser::operator=(request_parser&&) noexcept = default;

std::variant<client_request, protocol_error> request_parser::parse(std::string_view text)
{
    auto result = parse_frame(text);
    // simdjson keeps the capacity of the largest document it parsed; without
    // this one 64 KiB frame would cost every idle connection ~850 KB for
    // good. Chat frames are small, so big ones pay a fresh allocation.
    if (text.size() > retained_capacity)
        impl_->parser = dom::parser{};
    return result;
}

std::variant<client_request, protocol_error> request_parser::parse_frame(std::string_view text)
{
    dom::element doc;
    if (auto err = impl_->parser.parse(text.data(), text.size()).get(doc); err)
        return protocol_error{wire_error::bad_request,
                              std::string("frame is not valid JSON: ") +
                                  simdjson::error_message(err),
                              {}};
    dom::object o;
    if (doc.get(o) != simdjson::SUCCESS)
        return protocol_error{wire_error::bad_request,
                              std::string("frame must be a JSON object, got ") + type_name(doc),
                              {}};
    request_id id;
    try
    {
        id = read_id(o);
        auto const type = opt_string(o, "type");
        if (!type)
            bad("missing field 'type'");
        // `id` is copied, not moved: a validation error below still echoes it.
        if (*type == "generate")
            return parse_generate(o, id);
        if (*type == "subscribe")
            return parse_subscribe(o, id);
        if (*type == "cancel")
            return cancel_request{id, req_string(o, "messageId")};
        if (*type == "query")
            return parse_query(o, id);
        if (*type == "ping")
            return ping_request{id};
        if (*type == "mutate")
            return parse_mutate(o, id);
        if (*type == "watch")
            return watch_request{id};
        bad("unknown type '" + *type + "'");
    }
    catch (invalid& i)
    {
        return protocol_error{i.code, std::move(i.message), std::move(id)};
    }
}

//------------------------------------------------------------------------------

namespace events
{
namespace
{

/// Appends the fields of one event object; `done()` seals it into a frame.
class event_writer
{
public:
    explicit event_writer(std::string_view type, std::size_t reserve = 96)
    {
        out_.reserve(reserve);
        out_ += "{\"type\":\"";
        out_ += type;
        out_ += '"';
    }
    event_writer& str(std::string_view key, std::string_view value)
    {
        write_key(key);
        core::append_json_string(out_, value);
        return *this;
    }
    /// @p json must be valid JSON text.
    event_writer& raw(std::string_view key, std::string_view json)
    {
        write_key(key);
        out_ += json;
        return *this;
    }
    event_writer& num(std::string_view key, std::int64_t v)
    {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        return raw(key, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    event_writer& id(request_id const& id) { return id ? raw("id", *id) : *this; }
    std::size_t size() const noexcept { return out_.size(); }
    frame done()
    {
        out_ += '}';
        return frame{std::make_shared<std::string const>(std::move(out_))};
    }

private:
    void write_key(std::string_view key)
    {
        out_ += ",\"";
        out_ += key;
        out_ += "\":";
    }
    std::string out_;
};

} // namespace

frame ack(request_id const& id, std::string_view conversation_id, std::string_view user_message_id,
          std::string_view message_id)
{
    return event_writer("ack")
        .id(id)
        .str("conversationId", conversation_id)
        .str("userMessageId", user_message_id)
        .str("messageId", message_id)
        .done();
}

frame start(std::string_view message_id, std::string_view conversation_id)
{
    return event_writer("start")
        .str("messageId", message_id)
        .str("conversationId", conversation_id)
        .done();
}

namespace
{

frame delta_frame(char const* type, std::string_view message_id, std::uint64_t offset,
                  std::string_view delta)
{
    event_writer w(type, 64 + message_id.size() + delta.size());
    w.str("messageId", message_id);
    auto const key_len = w.size();
    w.num("offset", static_cast<std::int64_t>(offset));
    // The delta is the last field, so the queue can merge deltas by splicing
    // the escaped text between `"delta":"` and the closing `"}`.
    auto const delta_begin = w.size() + std::string_view(",\"delta\":\"").size();
    frame f = w.str("delta", delta).done();
    f.key_len = static_cast<std::uint32_t>(key_len);
    f.delta_begin = static_cast<std::uint32_t>(delta_begin);
    f.u16_begin = offset;
    f.u16_end = offset + core::utf16_length(delta);
    return f;
}

void write_delta(std::string& out, std::string_view head, std::string_view message_id,
                 std::uint64_t offset, std::string_view delta)
{
    out.clear();
    out += head;
    core::append_json_string(out, message_id);
    out += R"(,"offset":)";
    char buf[24];
    auto const r = std::to_chars(buf, buf + sizeof buf, offset);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
    out += R"(,"delta":)";
    core::append_json_string(out, delta);
    out += '}';
}

} // namespace

frame text_delta(std::string_view message_id, std::uint64_t offset, std::string_view delta)
{
    return delta_frame("text-delta", message_id, offset, delta);
}

void write_text_delta(std::string& out, std::string_view message_id, std::uint64_t offset,
                      std::string_view delta)
{
    write_delta(out, R"({"type":"text-delta","messageId":)", message_id, offset, delta);
}

frame reasoning_start(std::string_view message_id)
{
    return event_writer("reasoning-start").str("messageId", message_id).done();
}

frame reasoning_delta(std::string_view message_id, std::uint64_t offset, std::string_view delta)
{
    return delta_frame("reasoning-delta", message_id, offset, delta);
}

void write_reasoning_delta(std::string& out, std::string_view message_id, std::uint64_t offset,
                           std::string_view delta)
{
    write_delta(out, R"({"type":"reasoning-delta","messageId":)", message_id, offset, delta);
}

frame reasoning_end(std::string_view message_id)
{
    return event_writer("reasoning-end").str("messageId", message_id).done();
}

frame source(std::string_view message_id, std::int64_t position, std::string_view url,
             std::optional<std::string_view> title, std::optional<std::string_view> snippet)
{
    event_writer w("source");
    w.str("messageId", message_id).num("position", position).str("url", url);
    if (title)
        w.str("title", *title);
    if (snippet)
        w.str("snippet", *snippet);
    return w.done();
}

frame tool_input_start(std::string_view message_id, std::string_view tool_call_id,
                       std::string_view tool_name, std::uint64_t text_position)
{
    return event_writer("tool-input-start")
        .str("messageId", message_id)
        .str("toolCallId", tool_call_id)
        .str("toolName", tool_name)
        .num("textPosition", static_cast<std::int64_t>(text_position))
        .done();
}

frame tool_input_delta(std::string_view message_id, std::string_view tool_call_id,
                       std::string_view input_text_delta)
{
    return event_writer("tool-input-delta")
        .str("messageId", message_id)
        .str("toolCallId", tool_call_id)
        .str("inputTextDelta", input_text_delta)
        .done();
}

frame tool_input_available(std::string_view message_id, std::string_view tool_call_id,
                           std::string_view tool_name, std::string_view input_json,
                           std::uint64_t text_position)
{
    return event_writer("tool-input-available")
        .str("messageId", message_id)
        .str("toolCallId", tool_call_id)
        .str("toolName", tool_name)
        .raw("input", input_json)
        .num("textPosition", static_cast<std::int64_t>(text_position))
        .done();
}

frame tool_output_available(std::string_view message_id, std::string_view tool_call_id,
                            std::string_view output_json)
{
    return event_writer("tool-output-available")
        .str("messageId", message_id)
        .str("toolCallId", tool_call_id)
        .raw("output", output_json)
        .done();
}

frame tool_output_error(std::string_view message_id, std::string_view tool_call_id,
                        std::string_view error_text)
{
    return event_writer("tool-output-error")
        .str("messageId", message_id)
        .str("toolCallId", tool_call_id)
        .str("errorText", error_text)
        .done();
}

frame finish(std::string_view message_id, finish_info const& info)
{
    auto const usage = "{\"inputTokens\":" + std::to_string(info.input_tokens) +
                       ",\"outputTokens\":" + std::to_string(info.output_tokens) +
                       ",\"reasoningTokens\":" + std::to_string(info.reasoning_tokens) + "}";
    event_writer w("finish");
    w.str("messageId", message_id)
        .str("status", info.status)
        .str("finishReason", info.finish_reason)
        .raw("usage", usage);
    if (info.error)
        w.str("error", *info.error);
    return w.done();
}

frame error(request_id const& id, std::optional<std::string_view> message_id, wire_error code,
            std::string_view message)
{
    event_writer w("error");
    w.id(id);
    if (message_id)
        w.str("messageId", *message_id);
    return w.str("code", to_string(code)).str("message", message).done();
}

frame pong(request_id const& id)
{
    return event_writer("pong").id(id).done();
}

frame result(request_id const& id, std::string_view data_json)
{
    return event_writer("result").id(id).raw("data", data_json).done();
}

frame changed(std::string_view entity, std::string_view op, std::string_view id,
              std::string_view conversation_id, std::optional<std::string_view> data_json)
{
    event_writer w("changed");
    w.str("entity", entity).str("op", op).str("id", id).str("conversationId", conversation_id);
    if (data_json)
        w.raw("data", *data_json);
    return w.done();
}

} // namespace events
} // namespace chatstream::streaming
