// WebSocket events -> AI SDK UI message stream parts, and the useChat body.
#include "chatstream/streaming/ui_message_stream.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <boost/json.hpp>

namespace chatstream::streaming::ai_sdk
{
namespace
{

namespace json = boost::json;

void emit(std::string& out, json::object const& part)
{
    out += "data: ";
    out += json::serialize(part);
    out += "\n\n";
}

std::string_view str(json::object const& o, std::string_view key)
{
    if (auto const* v = o.if_contains(key); v && v->is_string())
        return v->get_string();
    return {};
}

bool contains_line(std::string const& joined, std::string_view id)
{
    std::size_t at = 0;
    while (at <= joined.size())
    {
        auto end = joined.find('\n', at);
        if (end == std::string::npos)
            end = joined.size();
        if (std::string_view(joined).substr(at, end - at) == id)
            return true;
        at = end + 1;
    }
    return false;
}

} // namespace

void ui_message_encoder::close_text(std::string& out)
{
    close_reasoning(out);
    if (!open_text_)
        return;
    emit(out, {{"type", "text-end"}, {"id", *open_text_}});
    open_text_.reset();
}

void ui_message_encoder::close_reasoning(std::string& out)
{
    if (!open_reasoning_)
        return;
    emit(out, {{"type", "reasoning-end"}, {"id", *open_reasoning_}});
    open_reasoning_.reset();
}

// Cuts the part of @p delta at UTF-16 @p offset that repeats what was
// passed on up to @p passed. @return false when nothing new is left.
bool ui_message_encoder::new_units(json::object const& e, std::uint64_t passed,
                                   std::string_view& delta, std::uint64_t& offset)
{
    delta = str(e, "delta");
    offset = passed;
    if (auto const* o = e.if_contains("offset"); o && o->is_number())
        offset = o->to_number<std::uint64_t>();
    // A delta that starts before what was passed on repeats text (e.g. a
    // replay overlapping the live stream): keep only the new units. The
    // hub never leaves a gap, so offset > passed is passed on as is.
    if (offset < passed)
    {
        auto const skip = passed - offset;
        if (skip >= core::utf16_length(delta))
            return false;
        delta = delta.substr(core::utf8_offset_of_utf16(delta, skip));
        offset = passed;
    }
    return !delta.empty();
}

void ui_message_encoder::open_reasoning(std::string& out)
{
    open_reasoning_ = "reasoning-" + std::to_string(reasoning_parts_++);
    emit(out, {{"type", "reasoning-start"}, {"id", *open_reasoning_}});
}

bool ui_message_encoder::encode(std::string_view event_json, std::string& out)
{
    if (done_)
        return true;
    boost::system::error_code ec;
    auto v = json::parse(event_json, ec);
    if (ec || !v.is_object())
        return false; // the hub only sends objects; nothing sensible to map
    auto const& e = v.get_object();
    auto const type = str(e, "type");

    if (type == "start")
    {
        message_id_ = std::string(str(e, "messageId"));
        json::object meta;
        if (auto c = str(e, "conversationId"); !c.empty())
            meta["conversationId"] = c;
        emit(out, {{"type", "start"}, {"messageId", message_id_}, {"messageMetadata", meta}});
    }
    else if (type == "reasoning-start")
    {
        close_text(out);
        open_reasoning(out);
    }
    else if (type == "reasoning-delta")
    {
        std::string_view delta;
        std::uint64_t offset = 0;
        if (!new_units(e, reasoning_u16_, delta, offset))
            return false;
        if (!open_reasoning_)
        {
            close_text(out);
            open_reasoning(out); // a client resuming mid-reasoning gets no start
        }
        emit(out, {{"type", "reasoning-delta"}, {"id", *open_reasoning_}, {"delta", delta}});
        reasoning_u16_ = offset + core::utf16_length(delta);
    }
    else if (type == "reasoning-end")
        close_reasoning(out);
    else if (type == "text-delta")
    {
        std::string_view delta;
        std::uint64_t offset = 0;
        if (!new_units(e, u16_, delta, offset))
            return false;
        close_reasoning(out);
        if (!open_text_)
        {
            open_text_ = "text-" + std::to_string(text_parts_++);
            emit(out, {{"type", "text-start"}, {"id", *open_text_}});
        }
        emit(out, {{"type", "text-delta"}, {"id", *open_text_}, {"delta", delta}});
        u16_ = offset + core::utf16_length(delta);
    }
    else if (type == "tool-input-start")
    {
        close_text(out);
        auto const id = str(e, "toolCallId");
        started_tool_ += id;
        started_tool_ += '\n';
        emit(out,
             {{"type", "tool-input-start"}, {"toolCallId", id}, {"toolName", str(e, "toolName")}});
    }
    else if (type == "tool-input-delta")
    {
        auto const id = str(e, "toolCallId");
        if (!contains_line(started_tool_, id))
            return false;
        emit(out, {{"type", "tool-input-delta"},
                   {"toolCallId", id},
                   {"inputTextDelta", str(e, "inputTextDelta")}});
    }
    else if (type == "tool-input-available")
    {
        close_text(out);
        json::value input = json::object();
        if (auto const* i = e.if_contains("input"))
            input = *i;
        emit(out, {{"type", "tool-input-available"},
                   {"toolCallId", str(e, "toolCallId")},
                   {"toolName", str(e, "toolName")},
                   {"input", input}});
    }
    else if (type == "tool-output-available")
    {
        close_text(out);
        json::value output = nullptr;
        if (auto const* o = e.if_contains("output"))
            output = *o;
        emit(out, {{"type", "tool-output-available"},
                   {"toolCallId", str(e, "toolCallId")},
                   {"output", output}});
    }
    else if (type == "tool-output-error")
    {
        close_text(out);
        emit(out, {{"type", "tool-output-error"},
                   {"toolCallId", str(e, "toolCallId")},
                   {"errorText", str(e, "errorText")}});
    }
    else if (type == "finish")
    {
        close_text(out);
        auto const status = str(e, "status");
        if (status == "stopped")
            emit(out, {{"type", "abort"}});
        else if (status == "error" || status == "interrupted")
        {
            auto text = str(e, "error");
            emit(out, {{"type", "error"},
                       {"errorText", text.empty() ? std::string_view(status) : text}});
        }
        json::object meta;
        meta["status"] = status;
        if (auto const* r = e.if_contains("finishReason"))
            meta["finishReason"] = *r;
        if (auto const* u = e.if_contains("usage"))
            meta["usage"] = *u;
        if (auto err = str(e, "error"); !err.empty())
            meta["error"] = err;
        emit(out, {{"type", "finish"}, {"messageMetadata", meta}});
        out += "data: [DONE]\n\n";
        done_ = true;
    }
    else if (type == "error")
    {
        close_text(out);
        auto message = str(e, "message");
        emit(out, {{"type", "error"}, {"errorText", message.empty() ? "error" : message}});
        out += "data: [DONE]\n\n";
        done_ = true;
    }
    return done_;
}

//------------------------------------------------------------------------------

bool valid_chat_id(std::string_view id) noexcept
{
    if (id.empty() || id.size() > 128)
        return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    return true;
}

std::variant<chat_request, std::string> parse_chat_request(std::string_view body)
{
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec)
        return "body is not valid JSON: " + ec.message();
    if (!v.is_object())
        return std::string("body must be a JSON object");
    auto const& o = v.get_object();

    chat_request r;
    auto const* id = o.if_contains("id");
    if (!id)
        return std::string("missing field 'id' (the chat id)");
    if (!id->is_string() || !valid_chat_id(id->get_string()))
        return std::string("field 'id' must be 1-128 characters of A-Z a-z 0-9 _ -");
    r.chat_id = std::string(id->get_string());

    if (auto const* t = o.if_contains("trigger"); t && !t->is_null())
    {
        if (!t->is_string())
            return std::string("field 'trigger' must be a string");
        if (t->get_string() == "regenerate-message")
        {
            auto const* m = o.if_contains("messageId");
            if (!m || !m->is_string() || m->get_string().empty())
                return std::string("trigger 'regenerate-message' needs 'messageId', the assistant "
                                   "message to regenerate");
            if (m->get_string().size() > max_identifier_bytes)
                return "field 'messageId' is longer than " + std::to_string(max_identifier_bytes) +
                       " bytes";
            r.regenerate_message_id = std::string(m->get_string());
        }
        else if (t->get_string() != "submit-message")
            return "unknown trigger '" + std::string(t->get_string()) + "'";
    }
    if (auto const* m = o.if_contains("model"); m && !m->is_null())
    {
        if (!m->is_string() || m->get_string().empty())
            return std::string("field 'model' must be a non-empty string");
        if (m->get_string().size() > max_identifier_bytes)
            return "field 'model' is longer than " + std::to_string(max_identifier_bytes) +
                   " bytes";
        r.model = std::string(m->get_string());
    }

    if (r.regenerate_message_id)
        return r; // the server's history is the context; the messages are the client's copy

    auto const* msgs = o.if_contains("messages");
    if (!msgs)
        return std::string("missing field 'messages'");
    if (!msgs->is_array() || msgs->get_array().empty())
        return std::string("field 'messages' must be a non-empty array");
    auto const& arr = msgs->get_array();
    auto const where = "messages[" + std::to_string(arr.size() - 1) + "]";
    if (!arr.back().is_object())
        return where + " must be an object";
    auto const& last = arr.back().get_object();
    auto role = str(last, "role");
    if (role != "user")
        return where + ": the last message must have role 'user', got '" + std::string(role) + "'";
    auto const* parts = last.if_contains("parts");
    if (!parts || !parts->is_array())
        return where + ": missing array 'parts'";
    bool any_text = false;
    for (auto const& p : parts->get_array())
    {
        if (!p.is_object() || str(p.get_object(), "type") != "text")
            continue;
        auto const* text = p.get_object().if_contains("text");
        if (!text || !text->is_string())
            return where + ": a text part needs a string 'text'";
        if (text->get_string().empty())
            continue;
        if (any_text)
            r.content += '\n';
        r.content += text->get_string();
        any_text = true;
    }
    if (!any_text)
        return where + ": the last user message has no text";
    if (r.content.size() > max_content_bytes)
        return where + ": the message text is larger than 64 KiB";
    return r;
}

} // namespace chatstream::streaming::ai_sdk
