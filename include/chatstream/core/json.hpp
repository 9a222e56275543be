#pragma once
/// @file json.hpp
/// JSON helpers shared by every module. Parsing uses simdjson; emitting uses
/// Boost.JSON's serializer for string escaping.
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::core
{

/// Canonical text of the JSON document @p text: validated, whitespace
/// removed, numbers and strings kept as written (same as SQLite's `json()`).
/// Returns std::nullopt and sets @p error when @p text is not valid JSON.
std::optional<std::string> canonical_json(std::string_view text, std::string* error = nullptr);

/// The JSON object @p base without its members named in @p drop or in
/// @p overrides, followed by every member of @p overrides, as minified text
/// (values re-serialised by simdjson, as the protocol parser stores them:
/// `1.50` becomes `1.5`). An empty view counts as `{}`.
/// @return std::nullopt when either is not a JSON object.
std::optional<std::string> merge_json_objects(std::string_view base, std::string_view overrides,
                                              std::initializer_list<std::string_view> drop = {});

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
