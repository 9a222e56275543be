// End-to-end: reasoning streams and generation timing (docs/design.md §9, issue
// 22) through the real binary, with the scripted provider's `/think N`.
#include "server_process.hpp"
#include "ws_helpers.hpp"

#include "chatstream/core/utf16.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace chatstream;
using namespace chatstream::test;
using namespace std::chrono_literals;

namespace
{

json::object get_message(ws_client& c, std::string const& id)
{
    auto m = c.query("getMessage", {{"messageId", id}});
    REQUIRE(str(m.at("type")) == "result");
    return m.at("data").as_object();
}

/// The event types of @p events in order, deltas of one kind collapsed into one.
std::vector<std::string> shape(std::vector<json::object> const& events)
{
    std::vector<std::string> out;
    for (auto const& e : events)
    {
        auto const t = str(e.at("type"));
        if (t == "changed" || (!out.empty() && out.back() == t && t.ends_with("-delta")))
            continue;
        out.push_back(t);
    }
    return out;
}

/// Reads until at least @p min_u16 units of reasoning (or of text, when
/// @p of_text) arrived. @return what arrived of each.
struct partial
{
    std::string reasoning;
    std::string text;
};
partial read_some(ws_client& c, std::uint64_t min_u16, bool of_text)
{
    partial p;
    while (core::utf16_length(of_text ? p.text : p.reasoning) < min_u16)
    {
        auto e = c.read();
        auto const t = str(e.at("type"));
        if (t == "reasoning-delta")
            p.reasoning += str(e.at("delta"));
        else if (t == "text-delta")
            p.text += str(e.at("delta"));
        else
            REQUIRE(t != "finish");
    }
    return p;
}

} // namespace

TEST_CASE("/think: reasoning streams before the answer at its own offsets, stored with its timing",
          "[integration][reasoning]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    c.send(generate("/think 40 /tokens 30 /delay 1"));
    auto r = read_generation(c); // reasoning and text offsets each contiguous from 0
    CHECK(shape(r.events) == std::vector<std::string>{"reasoning-start", "reasoning-delta",
                                                      "reasoning-end", "text-delta", "finish"});
    CHECK(r.reasoning_deltas == 40);
    CHECK(core::utf16_length(r.reasoning) != r.reasoning.size()); // surrogate pairs counted
    auto const& usage = r.finish.at("usage");
    CHECK(usage.at("reasoningTokens").as_int64() == 40);
    CHECK(usage.at("outputTokens").as_int64() == 70); // reasoning is output, as upstreams count it

    auto const id = str(r.ack.at("messageId"));
    auto const m = get_message(c, id);
    CHECK(str(m.at("reasoning")) == r.reasoning);
    CHECK(str(m.at("content")) == r.text);
    CHECK(m.at("partialReasoning").is_null());
    CHECK(m.at("reasoningTokens").as_int64() == 40);
    auto const at = [&](char const* k) { return m.at(k).as_int64(); };
    CHECK(at("generationStartedAt") <= at("thinkingStartedAt"));
    CHECK(at("thinkingStartedAt") < at("thinkingCompletedAt")); // 40 tokens at 1 ms each
    CHECK(at("thinkingCompletedAt") <= at("firstTokenAt"));
    CHECK(at("firstTokenAt") <= at("generationCompletedAt"));
    REQUIRE(m.at("tokensPerSecond").is_double());
    // 70 tokens at >= 1 ms each: at most 1000/s once the wait for the first
    // token is left out (a rate over the whole generation could be any lower).
    CHECK(m.at("tokensPerSecond").as_double() > 0);
    CHECK(m.at("tokensPerSecond").as_double() <= 1000.0);

    SECTION("replayed from the database: reasoning from 0, then the text from fromOffset")
    {
        c.send(json::object{{"type", "subscribe"}, {"messageId", id}, {"fromOffset", 5}});
        CHECK(str(c.read().at("type")) == "start");
        auto replay = read_until_finish(c, 5, id, 0);
        CHECK(shape(replay.events) == std::vector<std::string>{"reasoning-start", "reasoning-delta",
                                                               "reasoning-end", "text-delta",
                                                               "finish"});
        CHECK(replay.reasoning == r.reasoning);
        CHECK(replay.text == r.text.substr(core::utf8_offset_of_utf16(r.text, 5)));
        CHECK(replay.finish.at("usage").at("reasoningTokens").as_int64() == 40);
    }
    SECTION("fromReasoningOffset: no second start, the reasoning from there")
    {
        c.send(json::object{{"type", "subscribe"},
                            {"messageId", id},
                            {"fromOffset", 0},
                            {"fromReasoningOffset", 7}});
        CHECK(str(c.read().at("type")) == "start");
        auto replay = read_until_finish(c, 0, id, 7);
        CHECK(shape(replay.events) ==
              std::vector<std::string>{"reasoning-delta", "reasoning-end", "text-delta", "finish"});
        CHECK(replay.reasoning == r.reasoning.substr(core::utf8_offset_of_utf16(r.reasoning, 7)));
        CHECK(replay.text == r.text);
    }
    SECTION("fromReasoningOffset past the end of the reasoning is refused")
    {
        c.send(json::object{{"type", "subscribe"},
                            {"id", "s1"},
                            {"messageId", id},
                            {"fromReasoningOffset", core::utf16_length(r.reasoning) + 1}});
        auto e = c.read();
        CHECK(str(e.at("type")) == "error");
        CHECK(str(e.at("code")) == "bad_request");
        CHECK(str(e.at("message")).find("fromReasoningOffset") != std::string::npos);
    }
}

TEST_CASE("resume mid-reasoning and mid-text of a live generation: no gap, no overlap",
          "[integration][reasoning]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    std::string message_id;
    partial first;
    {
        ws_client a(server.port());
        a.send(generate("/think 300 /tokens 300 /delay 2"));
        message_id = str(a.read_until("ack").at("messageId"));
        first = read_some(a, 60, false);
        REQUIRE(first.text.empty());
    } // dropped mid-reasoning: the generation goes on
    ws_client b(server.port());
    auto const reasoning_from = core::utf16_length(first.reasoning);
    b.send(json::object{
        {"type", "subscribe"}, {"messageId", message_id}, {"fromReasoningOffset", reasoning_from}});
    CHECK(str(b.read().at("type")) == "start");
    auto second = read_some(b, 60, true); // the rest of the reasoning, then some text
    // Dropped again mid-text; the third connection has all the reasoning.
    b.stream().next_layer().close();
    auto const reasoning = first.reasoning + second.reasoning;
    ws_client c(server.port());
    auto const text_from = core::utf16_length(second.text);
    c.send(json::object{{"type", "subscribe"},
                        {"messageId", message_id},
                        {"fromOffset", text_from},
                        {"fromReasoningOffset", core::utf16_length(reasoning)}});
    CHECK(str(c.read().at("type")) == "start");
    auto rest = read_until_finish(c, text_from, message_id, core::utf16_length(reasoning));
    CHECK(rest.reasoning.empty());
    CHECK(str(rest.finish.at("status")) == "complete");
    auto const m = get_message(c, message_id);
    CHECK(str(m.at("reasoning")) == reasoning);
    CHECK(str(m.at("content")) == second.text + rest.text);
}

TEST_CASE("stop during reasoning: the message keeps what was thought, the block is closed",
          "[integration][reasoning]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    c.send(generate("/think 100000 /delay 20"));
    auto const id = str(c.read_until("ack").at("messageId"));
    auto got = read_some(c, 10, false);
    c.send(json::object{{"type", "cancel"}, {"id", "c1"}, {"messageId", id}});
    auto tail = read_until_finish(c, {}, id);
    CHECK(str(tail.finish.at("status")) == "stopped");
    auto const types = shape(tail.events);
    REQUIRE(types.size() >= 2);
    CHECK(types[types.size() - 2] == "reasoning-end"); // closed before the finish
    auto const m = get_message(c, id);
    CHECK(str(m.at("status")) == "stopped");
    CHECK(str(m.at("reasoning")) == got.reasoning + tail.reasoning);
    CHECK(str(m.at("content")).empty());
    CHECK(m.at("reasoningTokens").as_int64() ==
          static_cast<std::int64_t>(tail.finish.at("usage").at("reasoningTokens").as_int64()));
    CHECK(m.at("reasoningTokens").as_int64() > 0);
    CHECK(m.at("firstTokenAt").is_null()); // no answer text came
    CHECK(m.at("thinkingCompletedAt").is_int64());
}

TEST_CASE("kill -9 during reasoning, restart: the interrupted message keeps the flushed reasoning",
          "[integration][reasoning]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    std::string id;
    partial got;
    {
        ws_client c(server.port());
        c.send(generate("/think 100000 /delay 5"));
        id = str(c.read_until("ack").at("messageId"));
        got = read_some(c, 100, false);
        std::this_thread::sleep_for(150ms); // > --flush-ms
        server.stop(SIGKILL);
    }
    server.restart();
    ws_client c(server.port());
    auto const m = get_message(c, id);
    CHECK(str(m.at("status")) == "interrupted");
    auto const reasoning = str(m.at("reasoning"));
    CHECK(reasoning.size() >= got.reasoning.size());
    CHECK(reasoning.compare(0, got.reasoning.size(), got.reasoning) == 0); // chunks in byte order
    CHECK(m.at("partialReasoning").is_null());
    c.send(json::object{{"type", "subscribe"}, {"messageId", id}});
    CHECK(str(c.read().at("type")) == "start");
    auto replay = read_until_finish(c, 0, id, 0);
    CHECK(replay.reasoning == reasoning);
    CHECK(str(replay.finish.at("status")) == "interrupted");
}

TEST_CASE("the tool loop keeps each step's reasoning, in place", "[integration][reasoning]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    c.send(generate(R"(/think 3 /tool calculator {"expression":"6*7"})"));
    auto r = read_generation(c);
    CHECK(str(r.finish.at("status")) == "complete");
    // Step 1 thinks, says a few words, calls; step 2 thinks again and answers.
    CHECK(shape(r.events) == std::vector<std::string>{
                                 "reasoning-start", "reasoning-delta", "reasoning-end",
                                 "text-delta", "tool-input-start", "tool-input-delta",
                                 "tool-input-available", "tool-output-available", "reasoning-start",
                                 "reasoning-delta", "reasoning-end", "text-delta", "finish"});
    CHECK(r.finish.at("usage").at("reasoningTokens").as_int64() == 6);
    auto const m = get_message(c, str(r.ack.at("messageId")));
    CHECK(str(m.at("reasoning")) == r.reasoning);
}
