#include "chatstream/storage/legacy.hpp"

#include "chatstream/core/json.hpp"

#include <simdjson.h>

#include <map>

namespace chatstream::storage::legacy
{
namespace
{

using simdjson::dom::element;
using simdjson::dom::element_type;

// A precise, human-readable reason; thrown only inside convert().
struct reject
{
    std::string reason;
};

// Where in the legacy arrays a problem is, e.g. `tool_calls[2]`. Rendered
// only when a message is rejected: the hot path builds no strings.
struct where
{
    char const* column;
    std::size_t index;

    std::string str() const { return std::string(column) + "[" + std::to_string(index) + "]"; }
    friend std::string operator+(where const& w, char const* rest) { return w.str() + rest; }
};

// A JSON `null` document (some writers stored it instead of NULL) counts as
// an empty array, like SQL NULL and ''.
std::optional<simdjson::dom::array> parse_array(simdjson::dom::parser& parser,
                                                std::string const& text, char const* column)
{
    auto doc = parser.parse(text);
    if (doc.error())
        throw reject{std::string(column) + ": invalid JSON (" +
                     simdjson::error_message(doc.error()) + ")"};
    if (doc.value().is_null())
        return std::nullopt;
    auto arr = doc.value().get_array();
    if (arr.error())
        throw reject{std::string(column) + ": not a JSON array"};
    return arr.value();
}

std::string required_string(element obj, char const* key, where const& at)
{
    auto v = obj[key];
    if (v.error())
        throw reject{at + "." + key + ": missing"};
    auto s = v.get_string();
    if (s.error())
        throw reject{at + "." + key + ": not a string"};
    return std::string(s.value());
}

std::optional<std::int64_t> optional_integer(element obj, char const* key, where const& at)
{
    auto v = obj[key];
    if (v.error() || v.is_null())
        return std::nullopt;
    if (auto i = v.get_int64(); !i.error())
        return i.value();
    if (auto u = v.get_uint64(); !u.error())
        throw reject{at + "." + key + ": out of range"};
    if (auto d = v.get_double(); !d.error())
    {
        // JavaScript writers produce doubles (e.g. 12.0 or 1.7e12); anything
        // outside int64 (or NaN) would be undefined behaviour to cast.
        // Found by legacy_convert_fuzz.
        double const x = d.value();
        if (!(x >= -9.2e18 && x <= 9.2e18))
            throw reject{at + "." + key + ": out of range"};
        return static_cast<std::int64_t>(x);
    }
    throw reject{at + "." + key + ": not a number"};
}

// arguments/result are JSON documents stored as strings; an object is
// accepted as-is (some writers skipped the stringify).
std::optional<std::string> embedded_json(element obj, char const* key, where const& at,
                                         bool empty_is_object)
{
    auto v = obj[key];
    if (v.error() || v.is_null())
        return empty_is_object ? std::optional<std::string>("{}") : std::nullopt;
    if (auto s = v.get_string(); !s.error())
    {
        if (s.value().empty())
            return empty_is_object ? std::optional<std::string>("{}") : std::nullopt;
        std::string err;
        auto canonical = core::canonical_json(s.value(), &err);
        if (!canonical)
            throw reject{at + "." + key + ": invalid JSON (" + err + ")"};
        return canonical;
    }
    return simdjson::minify(v.value());
}

tool_call_row make_tool_call(message_context const& ctx, element e, where const& at, bool partial)
{
    if (!e.is_object())
        throw reject{at + ": not an object"};
    tool_call_row r;
    r.tool_call_id = required_string(e, "id", at);
    r.tool_name = required_string(e, "name", at);
    r.args = *embedded_json(e, "arguments", at, true);
    // A partial entry may already carry a result in some legacy rows; keep it.
    r.result = embedded_json(e, "result", at, false);
    r.text_position = optional_integer(e, "textPosition", at);
    r.timestamp = optional_integer(e, "timestamp", at).value_or(ctx.created_at);
    r.is_partial = partial;
    r.id = ctx.message_id + ":tc:" + r.tool_call_id;
    r.message_id = ctx.message_id;
    r.conversation_id = ctx.conversation_id;
    r.user_id = ctx.user_id;
    r.created_at = ctx.created_at;
    return r;
}

} // namespace

std::variant<rows, std::string> convert(message_context const& ctx, arrays const& in)
{
    thread_local simdjson::dom::parser parser;
    rows out;
    try
    {
        if (in.attachments && !in.attachments->empty())
        {
            auto arr = parse_array(parser, *in.attachments, "attachments");
            std::size_t i = 0;
            if (arr)
                for (element e : *arr)
                {
                    where const at{"attachments", i};
                    if (!e.is_object())
                        throw reject{at + ": not an object"};
                    attachment_row a;
                    a.position = static_cast<std::int64_t>(i);
                    a.type = required_string(e, "type", at);
                    if (a.type != "image" && a.type != "file" && a.type != "audio")
                        throw reject{at + ".type: '" + a.type + "' is not image|file|audio"};
                    a.name = required_string(e, "name", at);
                    a.storage_id = required_string(e, "storageId", at);
                    a.mime_type = required_string(e, "mimeType", at);
                    auto size = optional_integer(e, "size", at);
                    if (!size)
                        throw reject{at + ".size: missing"};
                    a.size = *size;
                    if (auto m = e["metadata"]; !m.error() && !m.is_null())
                    {
                        if (!m.is_object())
                            throw reject{at + ".metadata: not an object"};
                        a.metadata = simdjson::minify(m.value());
                    }
                    a.id = ctx.message_id + ":att:" + std::to_string(i);
                    a.message_id = ctx.message_id;
                    a.conversation_id = ctx.conversation_id;
                    a.user_id = ctx.user_id;
                    a.created_at = ctx.created_at;
                    out.attachments.push_back(std::move(a));
                    ++i;
                }
        }

        // id -> row; std::map keeps the output order deterministic.
        std::map<std::string, tool_call_row> calls;
        auto take = [&](std::optional<std::string> const& column, char const* name, bool partial)
        {
            if (!column || column->empty())
                return;
            // Parse into a copy of the array elements first: the parser is
            // reused for the second column.
            std::vector<tool_call_row> parsed;
            auto arr = parse_array(parser, *column, name);
            if (!arr)
                return;
            std::size_t i = 0;
            for (element e : *arr)
                parsed.push_back(make_tool_call(ctx, e, where{name, i++}, partial));
            for (auto& r : parsed)
            {
                auto it = calls.find(r.tool_call_id);
                if (it == calls.end())
                    calls.emplace(r.tool_call_id, std::move(r));
                else if (!partial || it->second.is_partial)
                    it->second = std::move(r); // last occurrence wins; partial never beats final
            }
        };
        take(in.tool_calls, "tool_calls", false);
        take(in.partial_tool_calls, "partial_tool_calls", true);
        for (auto& [id, r] : calls)
            out.tool_calls.push_back(std::move(r));
    }
    catch (reject const& r)
    {
        return r.reason;
    }
    return out;
}

} // namespace chatstream::storage::legacy
