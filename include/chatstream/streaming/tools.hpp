#pragma once
/// @file tools.hpp
/// Server-side tools (docs/design.md §7): `calculator` and `datetime`. A tool never
/// throws at its caller: a failure is a result `{"success":false,"error":...}`
/// that the model sees, and the generation goes on.
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace chatstream::storage
{
class read_pool;
}

namespace chatstream::streaming
{

/// What a tool call produced.
struct tool_result
{
    std::string json; ///< canonical JSON object text, always set
    bool success = false;
    std::string error; ///< when !success
};

/// `{"success":false,"error":message}` as a result.
tool_result make_tool_failure(std::string_view message);

/// How a tool is described to a model (OpenAI function calling).
struct tool_definition
{
    std::string name;
    std::string description;
    std::string parameters_json; ///< JSON Schema of the arguments object
};

/// Who a tool call runs for. A tool that reads stored data must scope every
/// read to `user_id`.
struct tool_context
{
    std::string user_id; ///< internal `users.id` of the caller
    std::string conversation_id;
    std::string message_id; ///< the assistant message being generated
};

/// Name -> implementation. Immutable after construction, so `run` is
/// thread-safe.
class tool_registry
{
public:
    /// A tool gets the call's arguments as JSON text and returns JSON text;
    /// it may throw to report a failure (turned into a failed result).
    using tool = std::function<std::string(std::string_view args_json)>;

    /// A tool that does I/O. It starts its work and returns at once, and calls
    /// @p done exactly once, from any thread, with its result; it must not
    /// block the calling (I/O) thread. @p ex may be used for sockets and timers.
    using async_tool =
        std::function<void(tool_context const& ctx, std::string args_json,
                           boost::asio::any_io_executor ex, std::function<void(tool_result)> done)>;

    /// A registry holding the built-in tools.
    static tool_registry with_builtins();

    void add(std::string name, tool t) { tools_[std::move(name)] = std::move(t); }
    void add_async(std::string name, async_tool t) { async_tools_[std::move(name)] = std::move(t); }
    bool has(std::string_view name) const
    {
        return tools_.contains(name) || async_tools_.contains(name);
    }

    /// Describes a tool to models. Tools without a description are not
    /// offered to a model (but still run when called).
    void describe(tool_definition d) { definitions_[d.name] = std::move(d); }

    /// The descriptions, in name order (what a provider sends as `tools`).
    std::vector<tool_definition> definitions() const;

    /// Runs tool @p name. Never throws: unknown tools, bad arguments and tool
    /// failures give `{"success":false,"error":"..."}`.
    /// An async tool is not run here (that would block): it gives a failure
    /// saying so; use run_async.
    tool_result run(std::string_view name, std::string_view args_json) const noexcept;

    /// Runs tool @p name, sync or async, and posts @p done to @p ex with its
    /// result; never calls @p done inline. Same failure rules as `run`.
    void run_async(std::string_view name, std::string args_json, tool_context ctx,
                   boost::asio::any_io_executor ex, std::function<void(tool_result)> done) const;

private:
    std::map<std::string, tool, std::less<>> tools_;
    std::map<std::string, async_tool, std::less<>> async_tools_;
    std::map<std::string, tool_definition, std::less<>> definitions_;
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
    std::string iso; ///< local time, e.g. 2024-06-01T14:03:05.120+02:00
};

/// Resolves @p zone: `UTC`/`GMT`/`Z`, fixed offsets (`+05:30`, `UTC-3`), or an
/// IANA name read from the system TZif database (/usr/share/zoneinfo; GCC 12
/// has no std::chrono::tzdb). Thread-safe (never touches TZ or localtime).
/// @throws std::invalid_argument for an unknown or malformed zone.
zoned_instant time_in_zone(std::string_view zone, std::chrono::system_clock::time_point at);

/// Adds the async `lookup` tool to @p registry (with its description):
/// `{"query": string, "limit"?: 1..20}` searches the caller's own stored
/// messages (case-insensitive for ASCII, newest first) on the read pool and
/// returns `{"success":true,"query","matches":[{messageId, conversationId,
/// conversationTitle, role, createdAt, snippet}]}`. Only finished messages
/// of `tool_context::user_id` are searched. @p reads must outlive the registry's use.
void add_lookup_tool(tool_registry& registry, storage::read_pool& reads);

} // namespace chatstream::streaming
