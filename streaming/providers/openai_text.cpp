// Text helpers of the openai provider (openai_text.hpp).
#include "providers/openai_text.hpp"

#include "chatstream/core/utf16.hpp"

#include <boost/json.hpp>

#include <cctype>

namespace chatstream::streaming::openai_text
{

namespace json = boost::json;

namespace
{

constexpr std::size_t max_quoted_message = 300;

// The human-readable message of an OpenAI-style error value: `{"message"}`,
// a plain string, or FastAPI's `detail`.
std::string error_text(json::value const& v)
{
    if (v.is_string())
        return std::string(v.as_string());
    if (!v.is_object())
        return {};
    auto const& o = v.as_object();
    for (auto key : {"message", "detail", "error"})
        if (auto const* m = o.if_contains(key))
        {
            if (m->is_string())
                return std::string(m->as_string());
            if (auto nested = error_text(*m); !nested.empty())
                return nested;
        }
    return {};
}

} // namespace

// Removes @p secret from text that may reach a user or a log.
std::string redact(std::string text, std::string_view secret)
{
    if (secret.size() < 4)
        return text;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
        text.replace(at, secret.size(), "***");
    return text;
}

// At most max_quoted_message bytes of @p s, cut on a code point boundary.
std::string shorten(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    if (s.size() <= max_quoted_message)
        return std::string(s);
    auto const head = s.substr(0, max_quoted_message);
    return std::string(head.substr(0, core::complete_utf8_prefix(head))) + "…";
}

// What an error body says, if it says something quotable (never HTML).
std::string upstream_message(std::string_view body)
{
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (!ec)
        return shorten(error_text(v));
    auto trimmed = shorten(body);
    if (trimmed.empty() || trimmed.front() == '<' || !core::is_valid_utf8(trimmed))
        return {};
    return trimmed;
}

std::string map_finish_reason(std::string_view r)
{
    if (r == "stop")
        return "stop";
    if (r == "length")
        return "length";
    if (r == "tool_calls" || r == "function_call")
        return "tool-calls";
    if (r == "content_filter")
        return "content-filter";
    return "other";
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

} // namespace chatstream::streaming::openai_text
