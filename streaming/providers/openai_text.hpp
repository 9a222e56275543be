#pragma once
// Text helpers of the openai provider, shared by the HTTP side (openai.cpp)
// and the stream decoder (openai_stream_decoder.cpp).
#include <string>
#include <string_view>

namespace chatstream::streaming::openai_text
{

// Removes @p secret from text that may reach a user or a log.
std::string redact(std::string text, std::string_view secret);

// At most 300 bytes of @p s, trimmed, cut on a code point boundary.
std::string shorten(std::string_view s);

// What an error body says, if it says something quotable (never HTML).
std::string upstream_message(std::string_view body);

// OpenAI's finish_reason as the wire's (stop, length, tool-calls, ...).
std::string map_finish_reason(std::string_view r);

std::string_view trim(std::string_view s);

} // namespace chatstream::streaming::openai_text
