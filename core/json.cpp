#include "chatstream/core/json.hpp"

#include <simdjson.h>

#include <algorithm>
#include <memory>

namespace chatstream::core
{

std::optional<std::string> canonical_json(std::string_view text, std::string* error)
{
    thread_local simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    auto doc = parser.parse(padded);
    if (doc.error())
    {
        if (error)
            *error = simdjson::error_message(doc.error());
        return std::nullopt;
    }
    // simdjson::minify keeps the original number and string spellings; the
    // DOM parse above already proved the text is valid.
    std::string out(text.size(), '\0');
    std::size_t len = 0;
    if (simdjson::minify(text.data(), text.size(), out.data(), len) != simdjson::SUCCESS)
    {
        if (error)
            *error = "minify failed";
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

std::optional<std::string> merge_json_objects(std::string_view base, std::string_view overrides,
                                              std::initializer_list<std::string_view> drop)
{
    // Two parsers: a DOM lives in its parser's buffers.
    thread_local simdjson::dom::parser base_parser;
    thread_local simdjson::dom::parser over_parser;
    simdjson::padded_string const base_text(base.empty() ? std::string_view("{}") : base);
    simdjson::padded_string const over_text(overrides.empty() ? std::string_view("{}") : overrides);
    simdjson::dom::object b, o;
    if (base_parser.parse(base_text).get(b) != simdjson::SUCCESS ||
        over_parser.parse(over_text).get(o) != simdjson::SUCCESS)
        return std::nullopt;
    std::string out = "{";
    auto member = [&](std::string_view key, simdjson::dom::element value)
    {
        if (out.size() > 1)
            out += ',';
        append_json_string(out, key);
        out += ':';
        out += simdjson::minify(value);
    };
    for (auto [key, value] : b)
    {
        bool skip = std::find(drop.begin(), drop.end(), key) != drop.end();
        for (auto field : o)
            skip = skip || field.key == key;
        if (!skip)
            member(key, value);
    }
    for (auto [key, value] : o)
        member(key, value);
    out += '}';
    return out;
}

void append_json_string(std::string& out, std::string_view s)
{
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out.push_back('"');
    for (unsigned char c : s)
    {
        switch (c)
        {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (c < 0x20)
            {
                out += "\\u00";
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 0xF]);
            }
            else
                out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
}

} // namespace chatstream::core
