#include "chatstream/streaming/tools.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cmath>

using namespace chatstream::streaming;
using Catch::Matchers::Contains;

TEST_CASE("calculator evaluates with precedence and associativity", "[streaming][tools]")
{
    CHECK(evaluate_expression("1 + 2 * 3") == 7);
    CHECK(evaluate_expression("(1 + 2) * 3") == 9);
    CHECK(evaluate_expression("2 ^ 3 ^ 2") == 512);
    CHECK(evaluate_expression("-2 ^ 2") == -4);
    CHECK(evaluate_expression("2 ^ -1") == 0.5);
    CHECK(evaluate_expression("10 - 4 - 3") == 3);
    CHECK(evaluate_expression("7 % 4") == 3);
    CHECK(evaluate_expression("1.5e3 / 3") == 500);
    CHECK(evaluate_expression("sqrt(16) + abs(-2) + max(1, 5, 3) + min(4, 2)") == 13);
    CHECK(evaluate_expression("floor(PI * 100)") == 314);
    CHECK(std::abs(evaluate_expression("sin(pi / 2) + ln(e)") - 2) < 1e-12);
    CHECK(evaluate_expression("pow(2, 10)") == 1024);
}

TEST_CASE("calculator reports errors with a position", "[streaming][tools]")
{
    CHECK_THROWS_WITH(evaluate_expression("1 / 0"), Contains("division by zero"));
    CHECK_THROWS_WITH(evaluate_expression("1 +"), Contains("unexpected end"));
    CHECK_THROWS_WITH(evaluate_expression("(1 + 2"), Contains("missing ')'"));
    CHECK_THROWS_WITH(evaluate_expression("2 $ 3"), Contains("unexpected '$' at position 2"));
    CHECK_THROWS_WITH(evaluate_expression("foo(1)"), Contains("unknown function 'foo'"));
    CHECK_THROWS_WITH(evaluate_expression("x + 1"), Contains("unknown name 'x'"));
    CHECK_THROWS_WITH(evaluate_expression("sqrt(-1)"), Contains("out of its domain"));
    CHECK_THROWS_WITH(evaluate_expression("pow(1)"), Contains("takes 2 arguments"));
    CHECK_THROWS_WITH(evaluate_expression("10 ^ 400"), Contains("not a finite number"));
    CHECK_THROWS_WITH(evaluate_expression(std::string(500, '(') + "1" + std::string(500, ')')),
                      Contains("nests too deeply"));
}

TEST_CASE("time zones: UTC, fixed offsets and IANA names", "[streaming][tools]")
{
    using namespace std::chrono;
    auto const t = sys_days{2024y / 7 / 1} + 12h + 30min + 5s + 250ms;
    CHECK(time_in_zone("UTC", t).iso == "2024-07-01T12:30:05.250Z");
    CHECK(time_in_zone("+05:30", t).iso == "2024-07-01T18:00:05.250+05:30");
    CHECK(time_in_zone("UTC-3", t).iso == "2024-07-01T09:30:05.250-03:00");
    CHECK(time_in_zone("GMT+0530", t).offset_seconds == 19800);
    auto paris = time_in_zone("Europe/Paris", t);
    CHECK(paris.iso == "2024-07-01T14:30:05.250+02:00");
    CHECK(paris.abbreviation == "CEST");
    auto winter = time_in_zone("Europe/Paris", sys_days{2024y / 1 / 15} + 0h);
    CHECK(winter.offset_seconds == 3600);
    CHECK(time_in_zone("America/New_York", t).offset_seconds == -4 * 3600);
    CHECK(time_in_zone("Asia/Kolkata", t).iso == "2024-07-01T18:00:05.250+05:30");
    CHECK_THROWS_AS(time_in_zone("Mars/Olympus", t), std::invalid_argument);
    CHECK_THROWS_AS(time_in_zone("../../etc/passwd", t), std::invalid_argument);
    CHECK_THROWS_AS(time_in_zone("+25:00", t), std::invalid_argument);
}

TEST_CASE("the registry never throws, failures are success:false results", "[streaming][tools]")
{
    auto const tools = tool_registry::with_builtins();
    auto ok = tools.run("calculator", R"({"expression":"6*7"})");
    CHECK(ok.success);
    CHECK(boost::json::parse(ok.json).at("result").as_int64() == 42);
    auto dt = tools.run("datetime", R"({"timezone":"Asia/Tokyo"})");
    CHECK(dt.success);
    CHECK(boost::json::parse(dt.json).at("utcOffsetMinutes").as_int64() == 540);

    for (auto const& [name, args, message] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"calculator", R"({"expression":"1/0"})", "division by zero"},
             {"calculator", R"({})", "missing argument 'expression'"},
             {"calculator", R"({"expression":5})", "must be a string"},
             {"calculator", "[1]", "must be a JSON object"},
             {"datetime", R"({"timezone":"Nowhere/City"})", "unknown time zone"},
             {"teleport", "{}", "unknown tool 'teleport'"}})
    {
        auto r = tools.run(name, args);
        INFO(name << " " << args);
        CHECK_FALSE(r.success);
        auto v = boost::json::parse(r.json).as_object();
        CHECK(v.at("success").as_bool() == false);
        CHECK_THAT(std::string(v.at("error").as_string()), Contains(message));
    }
}
