#include "chatstream/storage/legacy.hpp"

#include <catch2/catch.hpp>

using namespace chatstream::storage;
using namespace chatstream::storage::legacy;

namespace
{

message_context const ctx{"m1", "c1", "u1", 1000};

rows ok(arrays const& in)
{
    auto r = convert(ctx, in);
    if (auto* reason = std::get_if<std::string>(&r))
        FAIL("unexpected quarantine: " << *reason);
    return std::get<rows>(std::move(r));
}

std::string quarantined(arrays const& in)
{
    auto r = convert(ctx, in);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
}

} // namespace

TEST_CASE("NULL, empty text, [] and JSON null all mean no rows", "[migrations][legacy]")
{
    for (char const* none : {"[]", "", "null", " [ ] "})
    {
        auto r = ok({std::string(none), std::nullopt, std::string(none)});
        CHECK(r.attachments.empty());
        CHECK(r.tool_calls.empty());
    }
}

TEST_CASE("attachments keep their array index as position", "[migrations][legacy]")
{
    auto r =
        ok({R"([{"type":"image","name":"a.png","storageId":"s1","mimeType":"image/png","size":10,
                     "metadata":{"width": 3, "height":4}},
                    {"type":"file","name":"b.pdf","storageId":"s2","mimeType":"application/pdf","size":20}])",
            std::nullopt, std::nullopt});
    REQUIRE(r.attachments.size() == 2);
    CHECK(r.attachments[0].position == 0);
    CHECK(r.attachments[1].position == 1);
    CHECK(r.attachments[0].id == "m1:att:0");
    CHECK(r.attachments[0].metadata == std::optional<std::string>(R"({"width":3,"height":4})"));
    CHECK_FALSE(r.attachments[1].metadata);
    CHECK(r.attachments[1].conversation_id == "c1");
    CHECK(r.attachments[1].user_id == "u1");
}

TEST_CASE("one tool call per distinct id: final wins over partial, last occurrence wins",
          "[migrations][legacy]")
{
    auto r = ok({std::nullopt,
                 R"([{"id":"a","name":"w","arguments":"{\"v\":1}","timestamp":1,"textPosition":2},
                     {"id":"b","name":"w","arguments":"{}","result":"{\"r\" : 1}","timestamp":2},
                     {"id":"a","name":"w","arguments":"{\"v\": 2}","timestamp":3,"textPosition":5}])",
                 R"([{"id":"a","name":"w","arguments":"{\"v\":9}","timestamp":4},
                     {"id":"p","name":"w","arguments":"{\"p\":1}","timestamp":5},
                     {"id":"p","name":"w","arguments":"{\"p\":2}","timestamp":6}])"});
    REQUIRE(r.tool_calls.size() == 3);
    auto const& a = r.tool_calls[0];
    CHECK(a.tool_call_id == "a");
    CHECK(a.args == R"({"v":2})"); // last occurrence, canonical
    CHECK(a.text_position == 5);
    CHECK_FALSE(a.is_partial); // final beats the partial copy
    CHECK(a.id == "m1:tc:a");
    auto const& b = r.tool_calls[1];
    CHECK(b.result == std::optional<std::string>(R"({"r":1})"));
    CHECK_FALSE(b.text_position); // missing textPosition is NULL
    auto const& p = r.tool_calls[2];
    CHECK(p.is_partial); // only in partial_tool_calls
    CHECK(p.args == R"({"p":2})");
    CHECK(p.timestamp == 6);
}

TEST_CASE("empty or missing arguments are {}, null result and textPosition are absent",
          "[migrations][legacy]")
{
    auto r = ok(
        {std::nullopt,
         R"([{"id":"a","name":"w","arguments":"","timestamp":1,"textPosition":null,"result":null},
                     {"id":"b","name":"w","timestamp":1}])",
         std::nullopt});
    REQUIRE(r.tool_calls.size() == 2);
    for (auto const& t : r.tool_calls)
    {
        CHECK(t.args == "{}");
        CHECK_FALSE(t.result);
        CHECK_FALSE(t.text_position);
    }
}

TEST_CASE("non-ASCII JSON inside arguments survives unchanged", "[migrations][legacy]")
{
    auto r = ok({std::nullopt,
                 R"([{"id":"a","name":"w","arguments":"{\"q\": \"東京 😀\"}","timestamp":1}])",
                 std::nullopt});
    CHECK(r.tool_calls.at(0).args == "{\"q\":\"東京 😀\"}");
}

TEST_CASE("malformed input gives a precise quarantine reason", "[migrations][legacy]")
{
    CHECK(quarantined({R"([{"type":"image")", std::nullopt, std::nullopt})
              .starts_with("attachments: invalid JSON"));
    CHECK(quarantined({std::nullopt, R"({"id":"x"})", std::nullopt}) ==
          "tool_calls: not a JSON array");
    CHECK(
        quarantined({std::nullopt, R"([{"id":"x","name":"w","arguments":"{oops}","timestamp":1}])",
                     std::nullopt})
            .starts_with("tool_calls[0].arguments: invalid JSON"));
    CHECK(quarantined({std::nullopt, std::nullopt, R"([{"name":"w"}])"}) ==
          "partial_tool_calls[0].id: missing");
    CHECK(quarantined({R"([{"type":"video","name":"a","storageId":"s","mimeType":"v","size":1}])",
                       std::nullopt, std::nullopt}) ==
          "attachments[0].type: 'video' is not image|file|audio");
    CHECK(quarantined({R"([{"type":"file","name":"a","storageId":"s","mimeType":"v"}])",
                       std::nullopt, std::nullopt}) == "attachments[0].size: missing");
}

TEST_CASE("conversion is deterministic", "[migrations][legacy]")
{
    arrays in{std::nullopt,
              R"([{"id":"z","name":"w","timestamp":1},{"id":"a","name":"w","timestamp":1}])",
              R"([{"id":"m","name":"w","timestamp":1}])"};
    auto a = ok(in), b = ok(in);
    REQUIRE(a.tool_calls.size() == 3);
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(a.tool_calls[i].id == b.tool_calls[i].id);
    CHECK(a.tool_calls[0].tool_call_id == "a");
}

TEST_CASE("a numeric field outside int64 is quarantined, not cast", "[migrations][legacy]")
{
    using namespace chatstream::storage;
    legacy::message_context ctx{"m1", "c1", "u1", 1};
    legacy::arrays in;
    in.tool_calls = R"([{"id":"a","name":"x","arguments":"{}","timestamp":1,"textPosition":1e20}])";
    auto out = legacy::convert(ctx, in);
    REQUIRE(std::holds_alternative<std::string>(out));
    CHECK(std::get<std::string>(out).find("textPosition: out of range") != std::string::npos);
    in.tool_calls = R"([{"id":"a","name":"x","arguments":"{}","timestamp":1,"textPosition":12.0}])";
    out = legacy::convert(ctx, in);
    REQUIRE(std::holds_alternative<legacy::rows>(out));
    CHECK(std::get<legacy::rows>(out).tool_calls.at(0).text_position == 12);
}
