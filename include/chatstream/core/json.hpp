#pragma once
/// @file json.hpp
/// JSON helpers shared by every module. Parsing uses simdjson; emitting uses
/// Boost.JSON's serializer for string escaping.
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::core {

/// Canonical text of the JSON document @p text: validated, whitespace
/// removed, numbers and strings kept as written (same as SQLite's `json()`).
/// Returns std::nullopt and sets @p error when @p text is not valid JSON.
std::optional<std::string> canonical_json(std::string_view text, std::string* error = nullptr);

/// Appends @p s to @p out as a quoted, escaped JSON string.
void append_json_string(std::string& out, std::string_view s);

/// @p s as a quoted, escaped JSON string.
inline std::string json_string(std::string_view s)
{
    std::string out;
    append_json_string(out, s);
    return out;
}

} // namespace chatstream::core
