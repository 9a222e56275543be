#pragma once
/// @file tools.hpp
/// Server-side tools (DESIGN.md §7): `calculator` and `datetime`. A tool never
/// throws at its caller: a failure is a result `{"success":false,"error":...}`
/// that the model sees, and the generation goes on.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace chatstream::streaming {

/// What a tool call produced.
struct tool_result
{
    std::string json;   ///< canonical JSON object text, always set
    bool success = false;
    std::string error;  ///< when !success
};

/// Name -> implementation. Immutable after construction, so `run` is
/// thread-safe.
class tool_registry
{
public:
    /// A tool gets the call's arguments as JSON text and returns JSON text;
    /// it may throw to report a failure (turned into a failed result).
    using tool = std::function<std::string(std::string_view args_json)>;

    /// A registry holding the built-in tools.
    static tool_registry with_builtins();

    void add(std::string name, tool t) { tools_[std::move(name)] = std::move(t); }
    bool has(std::string_view name) const { return tools_.find(std::string(name)) != tools_.end(); }

    /// Runs tool @p name. Never throws: unknown tools, bad arguments and tool
    /// failures give `{"success":false,"error":"..."}`.
    tool_result run(std::string_view name, std::string_view args_json) const noexcept;

private:
    std::map<std::string, tool, std::less<>> tools_;
};

/// Evaluates an arithmetic expression with a recursive-descent parser (no
/// eval): numbers, `+ - * / % ^`, unary signs, parentheses, constants `pi`,
/// `e`, functions `sqrt abs sin cos tan asin acos atan ln log log10 log2 exp
/// floor ceil round min max pow`.
/// @throws std::invalid_argument with a message pointing at the problem.
double evaluate_expression(std::string_view expression);

/// Local time of a zone at an instant.
struct zoned_instant
{
    std::string zone;         ///< the zone as resolved (e.g. "Europe/Paris", "UTC+05:30")
    std::string abbreviation; ///< e.g. "CEST"; the offset text for fixed zones
    std::int32_t offset_seconds = 0;
    std::string iso;          ///< local time, e.g. 2024-06-01T14:03:05.120+02:00
};

/// Resolves @p zone: `UTC`/`GMT`/`Z`, fixed offsets (`+05:30`, `UTC-3`), or an
/// IANA name read from the system TZif database (/usr/share/zoneinfo; GCC 12
/// has no std::chrono::tzdb). Thread-safe (never touches TZ or localtime).
/// @throws std::invalid_argument for an unknown or malformed zone.
zoned_instant time_in_zone(std::string_view zone, std::chrono::system_clock::time_point at);

} // namespace chatstream::streaming
