#pragma once
/// @file utf16.hpp
/// Offsets in UTF-16 code units over UTF-8 text.
///
/// The wire protocol and `tool_calls.text_position` count UTF-16 code units,
/// because that is what a JavaScript client slices with. Text is kept as UTF-8
/// everywhere else, so these helpers translate. All functions are pure and
/// thread-safe; none allocates.
#include <cstddef>
#include <string_view>

namespace chatstream::core
{

/// Number of UTF-16 code units needed to encode @p utf8 (4-byte sequences
/// count 2). Invalid bytes count as one unit each (U+FFFD on decode).
std::size_t utf16_length(std::string_view utf8) noexcept;

/// Byte offset in @p utf8 of UTF-16 offset @p u16. An offset inside a
/// surrogate pair rounds down to the start of the pair; an offset past the end
/// returns `utf8.size()`.
std::size_t utf8_offset_of_utf16(std::string_view utf8, std::size_t u16) noexcept;

/// Length of the longest prefix of @p bytes that does not end inside a UTF-8
/// sequence, so a stream can be cut there without splitting a code point.
std::size_t complete_utf8_prefix(std::string_view bytes) noexcept;

/// True when @p bytes is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view bytes) noexcept;

} // namespace chatstream::core
