#include "chatstream/streaming/ui_message_stream.hpp"

#include "chatstream/streaming/generation.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace chatstream::streaming;
using ai_sdk::ui_message_encoder;
namespace json = boost::json;

namespace
{

// The SSE text as its `data:` payloads (parts as JSON objects; "[DONE]" as a string).
std::vector<json::value> parts_of(std::string const& sse)
{
    std::vector<json::value> out;
    std::size_t at = 0;
    while (at < sse.size())
    {
        auto const end = sse.find("\n\n", at);
        REQUIRE(end != std::string::npos);
        auto const event = sse.substr(at, end - at);
        REQUIRE(event.rfind("data: ", 0) == 0);
        REQUIRE(event.find('\n') == std::string::npos); // one line per event
        auto const payload = event.substr(6);
        out.push_back(payload == "[DONE]" ? json::value(payload) : json::parse(payload));
        at = end + 2;
    }
    return out;
}

std::string encode_all(std::vector<frame> const& frames, ui_message_encoder& enc)
{
    std::string out;
    for (auto const& f : frames)
        enc.encode(*f.data, out);
    return out;
}

std::vector<std::string> types(std::vector<json::value> const& parts)
{
    std::vector<std::string> t;
    for (auto const& p : parts)
        t.push_back(p.is_string() ? std::string(p.as_string())
                                  : std::string(p.at("type").as_string()));
    return t;
}

// What readUIMessageStream assembles, in miniature: text parts by id, tool
// parts in order. Returns "text:...|tool:ID:state|..." for comparison.
std::string assemble(std::vector<json::value> const& parts)
{
    std::vector<std::pair<std::string, std::string>> out; // kind, content
    std::map<std::string, std::size_t> text_index, tool_index;
    for (auto const& v : parts)
    {
        if (!v.is_object())
            continue;
        auto const& p = v.as_object();
        auto const type = std::string(p.at("type").as_string());
        if (type == "text-start")
        {
            REQUIRE(!text_index.count(std::string(p.at("id").as_string())));
            text_index[std::string(p.at("id").as_string())] = out.size();
            out.push_back({"text", ""});
        }
        else if (type == "text-delta")
            out.at(text_index.at(std::string(p.at("id").as_string()))).second +=
                std::string(p.at("delta").as_string());
        else if (type == "tool-input-start" || type == "tool-input-available")
        {
            auto const id = std::string(p.at("toolCallId").as_string());
            if (!tool_index.count(id))
            {
                tool_index[id] = out.size();
                out.push_back({"tool", id});
            }
        }
        else if (type == "tool-output-available" || type == "tool-output-error")
            REQUIRE(tool_index.count(std::string(p.at("toolCallId").as_string())));
    }
    std::string s;
    for (auto const& [k, c] : out)
        s += k + ":" + c + "|";
    return s;
}

} // namespace

TEST_CASE("ui message stream: text, tool call in place, text after it, finish",
          "[streaming][ai-sdk]")
{
    std::vector<frame> frames{
        events::ack({}, "c1", "u1", "m1"),
        events::start("m1", "c1"),
        events::text_delta("m1", 0, "Let me "),
        events::text_delta("m1", 7, "use it."),
        events::tool_input_start("m1", "call_1", "calculator", 14),
        events::tool_input_delta("m1", "call_1", "{\"expression\":"),
        events::tool_input_delta("m1", "call_1", "\"6*7\"}"),
        events::tool_input_available("m1", "call_1", "calculator", R"({"expression":"6*7"})", 14),
        events::tool_output_available("m1", "call_1", R"({"success":true,"result":42})"),
        events::text_delta("m1", 14, " The result is 42 🚀."),
        events::finish("m1", {"complete", "stop", 3, 9, std::nullopt}),
    };
    ui_message_encoder enc;
    auto const sse = encode_all(frames, enc);
    CHECK(enc.done());
    CHECK(enc.message_id() == "m1");
    auto const parts = parts_of(sse);
    CHECK(types(parts) ==
          std::vector<std::string>{"start", "text-start", "text-delta", "text-delta", "text-end",
                                   "tool-input-start", "tool-input-delta", "tool-input-delta",
                                   "tool-input-available", "tool-output-available", "text-start",
                                   "text-delta", "text-end", "finish", "[DONE]"});
    CHECK(assemble(parts) == "text:Let me use it.|tool:call_1|text: The result is 42 🚀.|");

    // Exactly the AI SDK 5.0.0 fields (it validated with strictObject).
    CHECK(parts[0] ==
          json::parse(
              R"({"type":"start","messageId":"m1","messageMetadata":{"conversationId":"c1"}})"));
    CHECK(parts[1] == json::parse(R"({"type":"text-start","id":"text-0"})"));
    CHECK(parts[2] == json::parse(R"({"type":"text-delta","id":"text-0","delta":"Let me "})"));
    CHECK(parts[4] == json::parse(R"({"type":"text-end","id":"text-0"})"));
    CHECK(parts[5] ==
          json::parse(
              R"({"type":"tool-input-start","toolCallId":"call_1","toolName":"calculator"})"));
    CHECK(
        parts[6] ==
        json::parse(
            R"({"type":"tool-input-delta","toolCallId":"call_1","inputTextDelta":"{\"expression\":"})"));
    CHECK(
        parts[8] ==
        json::parse(
            R"({"type":"tool-input-available","toolCallId":"call_1","toolName":"calculator","input":{"expression":"6*7"}})"));
    CHECK(
        parts[9] ==
        json::parse(
            R"({"type":"tool-output-available","toolCallId":"call_1","output":{"success":true,"result":42}})"));
    CHECK(parts[10] == json::parse(R"({"type":"text-start","id":"text-1"})"));
    CHECK(
        parts[13] ==
        json::parse(
            R"({"type":"finish","messageMetadata":{"status":"complete","finishReason":"stop","usage":{"inputTokens":3,"outputTokens":9,"reasoningTokens":0}}})"));

    // Nothing after the end.
    std::string more;
    CHECK(enc.encode(*events::text_delta("m1", 99, "late").data, more));
    CHECK(more.empty());
}

TEST_CASE("ui message stream: a replay (subscribe from 0) assembles the same parts",
          "[streaming][ai-sdk]")
{
    std::string const text = "Let me use it. The result is 42 🚀.";
    std::vector<replay_tool> tools{
        {"call_1", "calculator", R"({"expression":"6*7"})", R"({"success":true,"result":42})", 14}};
    std::vector<frame> frames{events::start("m1", "c1")};
    replay_frames("m1", text, tools, 0, [&](frame f) { frames.push_back(std::move(f)); });
    frames.push_back(events::finish("m1", {"complete", "stop", 3, 9, std::nullopt}));
    ui_message_encoder enc;
    auto const parts = parts_of(encode_all(frames, enc));
    CHECK(assemble(parts) == "text:Let me use it.|tool:call_1|text: The result is 42 🚀.|");
}

TEST_CASE("ui message stream: overlapping deltas are cut, UTF-16 aware", "[streaming][ai-sdk]")
{
    ui_message_encoder enc;
    std::string out;
    enc.encode(*events::start("m", "c").data, out);
    enc.encode(*events::text_delta("m", 0, "a🚀b").data, out); // 4 UTF-16 units
    enc.encode(*events::text_delta("m", 1, "🚀b").data, out);  // all seen
    enc.encode(*events::text_delta("m", 3, "bcd").data, out); // "b" seen
    enc.encode(*events::text_delta("m", 6, "e").data, out);
    auto const parts = parts_of(out);
    CHECK(assemble(parts) == "text:a🚀bcde|");
}

TEST_CASE("ui message stream: stopped, failed and internal endings", "[streaming][ai-sdk]")
{
    SECTION("stopped -> abort, finish")
    {
        ui_message_encoder enc;
        std::string out;
        enc.encode(*events::start("m", "c").data, out);
        enc.encode(*events::text_delta("m", 0, "partial").data, out);
        CHECK(enc.encode(*events::finish("m", {"stopped", "abort", 1, 1, std::nullopt}).data, out));
        CHECK(types(parts_of(out)) == std::vector<std::string>{"start", "text-start", "text-delta",
                                                               "text-end", "abort", "finish",
                                                               "[DONE]"});
        CHECK(parts_of(out)[4] == json::parse(R"({"type":"abort"})"));
    }
    SECTION("error -> error part with the text, finish")
    {
        ui_message_encoder enc;
        std::string out;
        enc.encode(*events::start("m", "c").data, out);
        CHECK(enc.encode(*events::finish("m", {"error", "error", 1, 0, "upstream failed"}).data,
                         out));
        auto const parts = parts_of(out);
        CHECK(types(parts) == std::vector<std::string>{"start", "error", "finish", "[DONE]"});
        CHECK(parts[1] == json::parse(R"({"type":"error","errorText":"upstream failed"})"));
        CHECK(parts[2].at("messageMetadata").at("status") == "error");
    }
    SECTION("error event (final commit failed) -> error, done")
    {
        ui_message_encoder enc;
        std::string out;
        enc.encode(*events::start("m", "c").data, out);
        enc.encode(*events::text_delta("m", 0, "x").data, out);
        CHECK(
            enc.encode(*events::error({}, "m", wire_error::internal, "could not store").data, out));
        CHECK(types(parts_of(out)) == std::vector<std::string>{"start", "text-start", "text-delta",
                                                               "text-end", "error", "[DONE]"});
    }
    SECTION("tool-output-error and a tool-input-delta without its start")
    {
        ui_message_encoder enc;
        std::string out;
        enc.encode(*events::tool_input_delta("m", "t9", "{").data, out);
        CHECK(out.empty());
        enc.encode(*events::tool_input_available("m", "t9", "calculator", "{}", 0).data, out);
        enc.encode(*events::tool_output_error("m", "t9", "division by zero").data, out);
        auto const parts = parts_of(out);
        CHECK(
            parts.back() ==
            json::parse(
                R"({"type":"tool-output-error","toolCallId":"t9","errorText":"division by zero"})"));
    }
}

TEST_CASE("useChat body: parsed and refused with a clear message", "[streaming][ai-sdk]")
{
    using ai_sdk::chat_request;
    using ai_sdk::parse_chat_request;
    auto ok = parse_chat_request(R"({"id":"abc_DEF-123","trigger":"submit-message","messages":[
        {"id":"1","role":"user","parts":[{"type":"text","text":"hi"}]},
        {"id":"2","role":"assistant","parts":[{"type":"text","text":"hello"}]},
        {"id":"3","role":"user","parts":[{"type":"step-start"},{"type":"text","text":"/tokens 5"},
                                         {"type":"file","url":"x","mediaType":"image/png"},
                                         {"type":"text","text":"more"}]}]})");
    REQUIRE(std::holds_alternative<chat_request>(ok));
    CHECK(std::get<chat_request>(ok).chat_id == "abc_DEF-123");
    CHECK(std::get<chat_request>(ok).content == "/tokens 5\nmore");
    CHECK(!std::get<chat_request>(ok).model);

    auto with_model = parse_chat_request(
        R"({"id":"a","model":"gpt-x","messages":[{"role":"user","parts":[{"type":"text","text":"x"}]}]})");
    REQUIRE(std::holds_alternative<chat_request>(with_model));
    CHECK(std::get<chat_request>(with_model).model == "gpt-x");

    auto error = [](std::string_view body)
    {
        auto r = parse_chat_request(body);
        REQUIRE(std::holds_alternative<std::string>(r));
        return std::get<std::string>(r);
    };
    CHECK_THAT(error("{"), Catch::StartsWith("body is not valid JSON"));
    CHECK(error("[]") == "body must be a JSON object");
    CHECK(error(R"({"messages":[]})") == "missing field 'id' (the chat id)");
    CHECK_THAT(error(R"({"id":"../x","messages":[]})"), Catch::Contains("field 'id' must be"));
    CHECK_THAT(error(R"({"id":7,"messages":[]})"), Catch::Contains("field 'id' must be"));
    CHECK(error(R"({"id":"a"})") == "missing field 'messages'");
    CHECK(error(R"({"id":"a","messages":[]})") == "field 'messages' must be a non-empty array");
    CHECK(error(R"({"id":"a","messages":[{"role":"assistant","parts":[]}]})") ==
          "messages[0]: the last message must have role 'user', got 'assistant'");
    CHECK(error(R"({"id":"a","messages":[{"role":"user"}]})") ==
          "messages[0]: missing array 'parts'");
    CHECK(error(R"({"id":"a","messages":[{"role":"user","parts":[{"type":"text","text":""}]}]})") ==
          "messages[0]: the last user message has no text");
    CHECK(error(R"({"id":"a","messages":[{"role":"user","parts":[{"type":"text","text":1}]}]})") ==
          "messages[0]: a text part needs a string 'text'");
    CHECK_THAT(
        error(
            R"({"id":"a","trigger":"regenerate-message","messages":[{"role":"user","parts":[]}]})"),
        Catch::Contains("needs 'messageId'"));
    {
        auto r = ai_sdk::parse_chat_request(
            R"({"id":"a","trigger":"regenerate-message","messageId":"m1","messages":[]})");
        REQUIRE(std::holds_alternative<ai_sdk::chat_request>(r));
        CHECK(std::get<ai_sdk::chat_request>(r).regenerate_message_id == "m1");
    }
    std::string big = R"({"id":"a","messages":[{"role":"user","parts":[{"type":"text","text":")" +
                      std::string(70000, 'x') + R"("}]}]})";
    CHECK_THAT(error(big), Catch::Contains("larger than 64 KiB"));

    CHECK(ai_sdk::valid_chat_id("0123456789abcdef"));
    CHECK(!ai_sdk::valid_chat_id(""));
    CHECK(!ai_sdk::valid_chat_id(std::string(129, 'a')));
    CHECK(!ai_sdk::valid_chat_id("a/b"));
}

TEST_CASE("ui message stream: reasoning parts before the text, a replayed overlap cut, a "
          "start-less delta opened",
          "[streaming][ai_sdk][reasoning]")
{
    ui_message_encoder enc;
    std::vector<frame> frames{
        events::start("m1", "c1"),
        events::reasoning_start("m1"),
        events::reasoning_delta("m1", 0, "Let 🤔"),
        events::reasoning_delta("m1", 2, "t 🤔 me"), // repeats "t 🤔" (units 2-4)
        events::reasoning_end("m1"),
        events::text_delta("m1", 0, "Hi"),
        events::finish("m1", {"complete", "stop", 1, 5, std::nullopt, 3})};
    auto const parts = parts_of(encode_all(frames, enc));
    CHECK(types(parts) == std::vector<std::string>{"start", "reasoning-start", "reasoning-delta",
                                                   "reasoning-delta", "reasoning-end", "text-start",
                                                   "text-delta", "text-end", "finish", "[DONE]"});
    CHECK(parts[1] == json::parse(R"({"type":"reasoning-start","id":"reasoning-0"})"));
    CHECK(parts[2] ==
          json::parse(R"({"type":"reasoning-delta","id":"reasoning-0","delta":"Let 🤔"})"));
    CHECK(parts[3] ==
          json::parse(R"({"type":"reasoning-delta","id":"reasoning-0","delta":" me"})"));
    CHECK(parts[4] == json::parse(R"({"type":"reasoning-end","id":"reasoning-0"})"));
    CHECK(parts[8].at("messageMetadata").at("usage").at("reasoningTokens") == 3);

    // A resume that joins mid-reasoning gets no reasoning-start: the part is
    // opened for it (the AI SDK drops a delta of an unknown part id).
    ui_message_encoder joined;
    std::vector<frame> resumed{events::start("m1", "c1"), events::reasoning_delta("m1", 4, "more"),
                               events::text_delta("m1", 0, "Hi"),
                               events::finish("m1", {"complete", "stop", 1, 5, std::nullopt})};
    CHECK(types(parts_of(encode_all(resumed, joined))) ==
          std::vector<std::string>{"start", "reasoning-start", "reasoning-delta", "reasoning-end",
                                   "text-start", "text-delta", "text-end", "finish", "[DONE]"});
}
