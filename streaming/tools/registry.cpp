// The built-in tools and the never-throwing dispatcher.
#include "chatstream/streaming/tools.hpp"

#include "chatstream/core/clock.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <cmath>
#include <stdexcept>

namespace chatstream::streaming
{
namespace
{

namespace json = boost::json;

json::object parse_args(std::string_view args_json)
{
    boost::system::error_code ec;
    auto v = json::parse(args_json, ec);
    if (ec)
        throw std::invalid_argument("arguments are not valid JSON");
    if (!v.is_object())
        throw std::invalid_argument("arguments must be a JSON object");
    return std::move(v.as_object());
}

std::string string_arg(json::object const& args, std::string_view key, bool required)
{
    auto const* v = args.if_contains(key);
    if (!v || v->is_null())
    {
        if (required)
            throw std::invalid_argument("missing argument '" + std::string(key) + "'");
        return {};
    }
    if (!v->is_string())
        throw std::invalid_argument("argument '" + std::string(key) + "' must be a string");
    return std::string(v->as_string());
}

std::string calculator(std::string_view args_json)
{
    auto args = parse_args(args_json);
    auto const expression = string_arg(args, "expression", true);
    double const v = evaluate_expression(expression);
    json::object out;
    out["success"] = true;
    out["expression"] = expression;
    // Integers print as integers ("4", not "4.0"), which is what a model quotes.
    if (std::abs(v) < 9e15 && v == std::floor(v))
        out["result"] = static_cast<std::int64_t>(v);
    else
        out["result"] = v;
    return json::serialize(out);
}

std::string datetime(std::string_view args_json)
{
    auto args = parse_args(args_json);
    auto zone = string_arg(args, "timezone", false);
    if (zone.empty())
        zone = "UTC";
    auto const now = std::chrono::system_clock::now();
    auto z = time_in_zone(zone, now);
    json::object out;
    out["success"] = true;
    out["timezone"] = z.zone;
    out["abbreviation"] = z.abbreviation;
    out["utcOffsetMinutes"] = z.offset_seconds / 60;
    out["iso"] = z.iso;
    out["unixMs"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    return json::serialize(out);
}

std::string failure(std::string_view message)
{
    json::object out;
    out["success"] = false;
    out["error"] = message;
    return json::serialize(out);
}

} // namespace

tool_result make_tool_failure(std::string_view message)
{
    return {failure(message), false, std::string(message)};
}

tool_registry tool_registry::with_builtins()
{
    tool_registry r;
    r.add("calculator", calculator);
    r.add("datetime", datetime);
    r.describe(
        {"calculator",
         "Evaluates an arithmetic expression exactly: + - * / % ^, parentheses, pi, e, and sqrt "
         "abs sin cos "
         "tan asin acos atan ln log log10 log2 exp floor ceil round min max pow.",
         R"({"type":"object","properties":{"expression":{"type":"string","description":"e.g. 2*(3+4)^2"}},)"
         R"("required":["expression"],"additionalProperties":false})"});
    r.describe(
        {"datetime",
         "Current date and time in a time zone (IANA name like Europe/Paris, UTC, or an offset "
         "like +05:30).",
         R"({"type":"object","properties":{"timezone":{"type":"string","description":"default UTC"}},)"
         R"("additionalProperties":false})"});
    return r;
}

std::vector<tool_definition> tool_registry::definitions() const
{
    std::vector<tool_definition> out;
    for (auto const& [name, d] : definitions_)
        if (has(name))
            out.push_back(d);
    return out;
}

void tool_registry::run_async(std::string_view name, std::string args_json, tool_context ctx,
                              boost::asio::any_io_executor ex,
                              std::function<void(tool_result)> done) const
{
    namespace net = boost::asio;
    auto it = async_tools_.find(name);
    if (it == async_tools_.end())
    {
        // Sync tools are CPU-only and quick: run them here, complete later.
        net::post(ex, [done = std::move(done), r = run(name, args_json)]() mutable
                  { done(std::move(r)); });
        return;
    }
    // The tool may complete on any thread: bring the result back to ex.
    auto shared_done = std::make_shared<std::function<void(tool_result)>>(std::move(done));
    auto back = [ex, shared_done](tool_result r)
    { net::post(ex, [shared_done, r = std::move(r)]() mutable { (*shared_done)(std::move(r)); }); };
    try
    {
        it->second(ctx, std::move(args_json), ex, back);
    }
    catch (std::exception const& e)
    {
        // A tool throws only before it started its work (it never calls back then).
        back(make_tool_failure(e.what()));
    }
}

tool_result tool_registry::run(std::string_view name, std::string_view args_json) const noexcept
{
    try
    {
        auto it = tools_.find(name);
        if (it == tools_.end() && async_tools_.contains(name))
            return make_tool_failure("tool '" + std::string(name) +
                                     "' does I/O and only runs through run_async");
        if (it == tools_.end())
        {
            std::string msg = "unknown tool '" + std::string(name) + "'";
            return {failure(msg), false, msg};
        }
        return {it->second(args_json), true, {}};
    }
    catch (std::exception const& e)
    {
        try
        {
            return {failure(e.what()), false, e.what()};
        }
        catch (...)
        {
        }
    }
    catch (...)
    {
    }
    return {R"({"success":false,"error":"tool failed"})", false, "tool failed"};
}

} // namespace chatstream::streaming
