#include "chatstream/streaming/generation.hpp"

#include "chatstream/core/utf16.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::streaming;

namespace
{

struct replayed
{
    std::vector<boost::json::object> events;
    std::string text;
};

replayed replay(std::string_view text, std::vector<replay_tool> const& tools, std::uint64_t from)
{
    replayed r;
    std::uint64_t expected = 0;
    bool first = true;
    replay_frames("m", text, tools, from,
                  [&](frame f)
                  {
                      auto e = boost::json::parse(*f.data).as_object();
                      if (e.at("type").as_string() == "text-delta")
                      {
                          auto const delta = std::string(e.at("delta").as_string());
                          auto const offset = static_cast<std::uint64_t>(e.at("offset").as_int64());
                          if (!first)
                              CHECK(offset == expected);
                          first = false;
                          CHECK(core::is_valid_utf8(delta));
                          expected = offset + core::utf16_length(delta);
                          r.text += delta;
                      }
                      r.events.push_back(std::move(e));
                  });
    return r;
}

} // namespace

TEST_CASE("replay starts at a UTF-16 offset and never splits a surrogate pair",
          "[streaming][replay]")
{
    std::string const text = "a🙂b日c"; // UTF-16: a=0, 🙂=1..2, b=3, 日=4, c=5
    auto r = replay(text, {}, 3);
    CHECK(r.text == "b日c");
    CHECK(r.events.at(0).at("offset").as_int64() == 3);

    // An offset inside the pair rounds down: the pair is replayed whole.
    auto mid = replay(text, {}, 2);
    CHECK(mid.text == "🙂b日c");
    CHECK(mid.events.at(0).at("offset").as_int64() == 1);

    CHECK(replay(text, {}, 6).events.empty());
}

TEST_CASE("replay interleaves tool calls at their text positions", "[streaming][replay]")
{
    std::string const text = "héllo 🚀 world";
    std::vector<replay_tool> tools{
        {"t1", "calculator", R"({"expression":"1"})", R"({"success":true,"result":1})", 6},
        {"t2", "datetime", "{}", R"({"success":false,"error":"bad zone"})", 9}};
    auto r = replay(text, tools, 0);
    std::vector<std::string> kinds;
    for (auto const& e : r.events)
        kinds.emplace_back(e.at("type").as_string());
    CHECK(kinds == std::vector<std::string>{
                       "text-delta", "tool-input-available", "tool-output-available", "text-delta",
                       "tool-input-available", "tool-output-error", "text-delta"});
    CHECK(r.text == text);
    CHECK(r.events[0].at("delta").as_string() == "héllo ");
    CHECK(r.events[3].at("delta").as_string() == "🚀 ");
    CHECK(r.events[5].at("errorText").as_string() == "bad zone");

    // From an offset past the first tool call, only the second is replayed.
    auto later = replay(text, tools, 7);
    int calls = 0;
    for (auto const& e : later.events)
        calls += e.at("type").as_string() == "tool-input-available";
    CHECK(calls == 1);
}

TEST_CASE("long replays are cut into bounded deltas on code point boundaries",
          "[streaming][replay]")
{
    std::string text;
    while (text.size() < 100 * 1024)
        text += "ab🙂日";
    auto r = replay(text, {}, 0);
    CHECK(r.text == text);
    CHECK(r.events.size() >= 7);
    for (auto const& e : r.events)
        CHECK(e.at("delta").as_string().size() <= 16 * 1024);
}
