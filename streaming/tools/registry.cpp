// The built-in tools and the never-throwing dispatcher.
#include "chatstream/streaming/tools.hpp"

#include "chatstream/core/clock.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <stdexcept>

namespace chatstream::streaming {
namespace {

namespace json = boost::json;

json::object parse_args(std::string_view args_json)
{
    boost::system::error_code ec;
    auto v = json::parse(args_json, ec);
    if (ec) throw std::invalid_argument("arguments are not valid JSON");
    if (!v.is_object()) throw std::invalid_argument("arguments must be a JSON object");
    return std::move(v.as_object());
}

std::string string_arg(json::object const& args, std::string_view key, bool required)
{
    auto const* v = args.if_contains(key);
    if (!v || v->is_null())
    {
        if (required) throw std::invalid_argument("missing argument '" + std::string(key) + "'");
        return {};
    }
    if (!v->is_string()) throw std::invalid_argument("argument '" + std::string(key) + "' must be a string");
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
    if (zone.empty()) zone = "UTC";
    auto const now = std::chrono::system_clock::now();
    auto z = time_in_zone(zone, now);
    json::object out;
    out["success"] = true;
    out["timezone"] = z.zone;
    out["abbreviation"] = z.abbreviation;
    out["utcOffsetMinutes"] = z.offset_seconds / 60;
    out["iso"] = z.iso;
    out["unixMs"] = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
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

tool_registry tool_registry::with_builtins()
{
    tool_registry r;
    r.add("calculator", calculator);
    r.add("datetime", datetime);
    return r;
}

tool_result tool_registry::run(std::string_view name, std::string_view args_json) const noexcept
{
    try
    {
        auto it = tools_.find(name);
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
