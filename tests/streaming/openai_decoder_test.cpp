// The openai provider without sockets: the SSE/JSON decoder, the request
// body and the HTTP error messages.
#include "chatstream/streaming/openai_provider.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "openai_test_sink.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::streaming;
using Catch::Matchers::Contains;
namespace json = boost::json;

namespace
{

std::string sse(std::string_view data)
{
    return "data: " + std::string(data) + "\n\n";
}

std::string content_chunk(std::string_view text)
{
    return sse(
        R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":)" +
        core::json_string(text) + R"(},"finish_reason":null}]})");
}

std::string finish_chunk(std::string_view reason)
{
    return sse(R"({"choices":[{"index":0,"delta":{},"finish_reason":")" + std::string(reason) +
               R"("}]})");
}

std::string const usage_chunk =
    sse(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}})");
std::string const done = sse("[DONE]");

// A recorded-style stream: role chunk, text with accents, CJK and an emoji
// outside the BMP, finish, usage, [DONE], with a keep-alive comment.
std::string text_stream()
{
    return sse(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})") +
           content_chunk("Hello") + ": keep-alive\n\n" + content_chunk(" café 日本語") +
           content_chunk(" 🚀!") + finish_chunk("stop") + usage_chunk + done;
}

// Two parallel calls, the way OpenAI streams them: id + name first, then
// argument fragments, the second call after the first.
std::string tool_stream()
{
    auto call = [](int index, std::string_view fields)
    {
        return sse(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":)" +
                   std::to_string(index) + "," + std::string(fields) +
                   "}]},\"finish_reason\":null}]}");
    };
    return content_chunk("Checking.") +
           call(
               0,
               R"("id":"call_a","type":"function","function":{"name":"calculator","arguments":""})") +
           call(0, R"("function":{"arguments":"{\"expre"})") +
           call(0, R"("function":{"arguments":"ssion\": \"6*7\"}"})") +
           call(
               1,
               R"("id":"call_b","type":"function","function":{"name":"datetime","arguments":"{\"timezone\""})") +
           call(1, R"("function":{"arguments":":\"Asia/Tokyo\"}"})") + finish_chunk("tool_calls") +
           usage_chunk + done;
}

std::string delta_chunk(std::string_view field, std::string_view text)
{
    return sse(R"({"choices":[{"index":0,"delta":{")" + std::string(field) + R"(":)" +
               core::json_string(text) + R"(},"finish_reason":null}]})");
}

// DeepSeek / vLLM style: reasoning_content first (content null), then the
// answer, and usage with completion_tokens_details.
std::string reasoning_stream(std::string_view field = "reasoning_content")
{
    return sse(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""}}]})") +
           delta_chunk(field, "Let me") + delta_chunk(field, " think: 6×7 🤔") +
           sse(R"({"choices":[{"index":0,"delta":{"content":"42","reasoning_content":null}}]})") +
           content_chunk(" it is.") + finish_chunk("stop") +
           sse(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":30,)"
               R"("completion_tokens_details":{"reasoning_tokens":24}}})") +
           done;
}

std::shared_ptr<test::recording_sink> decode(std::string_view body, std::size_t piece = 0,
                                             bool think_tags = false)
{
    auto sink = std::make_shared<test::recording_sink>();
    openai_stream_decoder d(sink, 2, {}, think_tags);
    if (piece == 0)
        d.feed(body);
    else
        for (std::size_t i = 0; i < body.size(); i += piece)
            d.feed(body.substr(i, piece));
    d.end_of_stream();
    return sink;
}

} // namespace

TEST_CASE("openai decoder: text, usage and [DONE]", "[streaming][openai]")
{
    auto s = decode(text_stream());
    CHECK(s->error.empty());
    CHECK(s->text() == "Hello café 日本語 🚀!");
    CHECK(s->finish_reason == "stop");
    CHECK(s->usage.input_tokens == 12);
    CHECK(s->usage.output_tokens == 7);
    CHECK(s->calls_after_end == 0);
    CHECK(s->log.back() == "finish:stop");
}

TEST_CASE("openai decoder: any chunking gives the same calls, never a split code point",
          "[streaming][openai]")
{
    auto const body = text_stream();
    auto const whole = decode(body)->log;
    for (std::size_t piece : {1, 2, 3, 5, 7, 64})
    {
        INFO("pieces of " << piece);
        auto s = decode(body, piece);
        CHECK(s->log == whole);
        for (auto const& t : s->texts)
            CHECK(core::is_valid_utf8(t));
    }
    // Every single cut point.
    for (std::size_t cut = 0; cut <= body.size(); ++cut)
    {
        auto sink = std::make_shared<test::recording_sink>();
        openai_stream_decoder d(sink);
        d.feed(std::string_view(body).substr(0, cut));
        d.feed(std::string_view(body).substr(cut));
        CHECK(sink->log == whole);
    }
}

TEST_CASE("openai decoder: two parallel tool calls", "[streaming][openai]")
{
    auto s = decode(tool_stream(), 3);
    CHECK(s->log == std::vector<std::string>{
                        "text:Checking.",
                        "start:call_a:calculator",
                        "delta:call_a:{\"expre",
                        "delta:call_a:ssion\": \"6*7\"}",
                        "start:call_b:datetime",
                        "delta:call_b:{\"timezone\"",
                        "delta:call_b::\"Asia/Tokyo\"}",
                        "call:call_a:calculator:{\"expression\":\"6*7\"}",
                        "call:call_b:datetime:{\"timezone\":\"Asia/Tokyo\"}",
                        "finish:tool-calls",
                    });
    CHECK(s->usage.output_tokens == 7);
}

TEST_CASE("openai decoder: tool call quirks of compatible servers", "[streaming][openai]")
{
    SECTION("no id, whole call in one delta, finish_reason stop")
    {
        auto s = decode(
            sse(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"datetime","arguments":"{}"}}]}}]})") +
            finish_chunk("stop") + done);
        CHECK(s->log == std::vector<std::string>{"start:call_2_0:datetime", "delta:call_2_0:{}",
                                                 "call:call_2_0:datetime:{}", "finish:tool-calls"});
    }
    SECTION("name repeated in every delta, arguments empty")
    {
        auto s = decode(
            sse(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"datetime"}}]}}]})") +
            sse(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"datetime","arguments":""}}]}}]})") +
            finish_chunk("tool_calls") + done);
        CHECK(s->log == std::vector<std::string>{"start:x:datetime", "call:x:datetime:{}",
                                                 "finish:tool-calls"});
    }
    SECTION("invalid argument JSON is passed as a JSON string of the raw text")
    {
        auto s = decode(
            sse(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"calculator","arguments":"{\"expression\": 1+"}}]}}]})") +
            finish_chunk("tool_calls") + done);
        CHECK(s->log.at(2) == R"(call:x:calculator:"{\"expression\": 1+")");
        CHECK(s->finish_reason == "tool-calls");
    }
    SECTION("a call without a name is an error")
    {
        auto s = decode(
            sse(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"arguments":"{}"}}]}}]})") +
            finish_chunk("tool_calls") + done);
        CHECK_THAT(s->error, Contains("without a function name"));
    }
    SECTION("a duplicate id gets a fresh one")
    {
        auto s = decode(
            sse(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"a"}},{"index":1,"id":"x","function":{"name":"b"}}]}}]})") +
            finish_chunk("tool_calls") + done);
        CHECK(s->log.at(0) == "start:x:a");
        CHECK(s->log.at(1) == "start:call_2_1:b");
    }
}

TEST_CASE("openai decoder: finish reasons", "[streaming][openai]")
{
    for (auto const& [upstream, ours] :
         std::vector<std::pair<std::string, std::string>>{{"stop", "stop"},
                                                          {"length", "length"},
                                                          {"content_filter", "content-filter"},
                                                          {"weird", "other"}})
    {
        auto s = decode(content_chunk("x") + finish_chunk(upstream) + done);
        CHECK(s->finish_reason == ours);
    }
}

TEST_CASE("openai decoder: errors end the step once", "[streaming][openai]")
{
    SECTION("malformed JSON in a chunk")
    {
        auto s = decode(content_chunk("a") + sse(R"({"choices":[{"delta":{"content":"b"})") +
                        content_chunk("c") + done);
        CHECK(s->text() == "a");
        CHECK_THAT(s->error, Contains("malformed JSON"));
        CHECK(s->calls_after_end == 0);
    }
    SECTION("an error chunk mid-stream")
    {
        auto s =
            decode(content_chunk("a") +
                   sse(R"({"error":{"message":"The server had an error","type":"server_error"}})"));
        CHECK(s->error == "upstream error: The server had an error");
    }
    SECTION("an error event")
    {
        auto s = decode("event: error\ndata: overloaded\n\n");
        CHECK(s->error == "upstream error: overloaded");
    }
    SECTION("the body ends before the answer does")
    {
        auto s = decode(content_chunk("a") + "data: {\"cho");
        CHECK(s->text() == "a");
        CHECK_THAT(s->error, Contains("before the answer was finished"));
    }
    SECTION("a finish chunk without [DONE] is enough")
    {
        auto s = decode(content_chunk("a") + finish_chunk("stop"));
        CHECK(s->error.empty());
        CHECK(s->finish_reason == "stop");
    }
    SECTION("an oversized event")
    {
        auto sink = std::make_shared<test::recording_sink>();
        openai_stream_decoder d(sink);
        std::string big = "data: \"" + std::string(1 << 20, 'x');
        for (int i = 0; i < 5 && sink->error.empty(); ++i)
            d.feed(big);
        CHECK_THAT(sink->error, Contains("oversized"));
    }
}

TEST_CASE("openai decoder: detach and cancel from inside the sink stop every call",
          "[streaming][openai]")
{
    auto sink = std::make_shared<test::recording_sink>();
    openai_stream_decoder d(sink);
    sink->after_text = [&] { d.detach(); };
    d.feed(text_stream());
    d.end_of_stream();
    d.fail("late");
    CHECK(d.done());
    CHECK(sink->log == std::vector<std::string>{"text:Hello"});
}

TEST_CASE("openai decoder: the secret never reaches an error message", "[streaming][openai]")
{
    auto sink = std::make_shared<test::recording_sink>();
    openai_stream_decoder d(sink, 0, "sk-secret-123");
    d.feed(sse(R"({"error":{"message":"bad key sk-secret-123 given"}})"));
    CHECK(sink->error == "upstream error: bad key *** given");
}

TEST_CASE("openai request body: messages, tool exchanges, tools, model", "[streaming][openai]")
{
    openai_options o;
    o.model = "gpt-4o-mini";
    o.system_prompt = "Be brief.";
    o.max_output_tokens = 256;
    o.tools = tool_registry::with_builtins().definitions();
    provider_request r;
    r.messages = {{"user", "what is 6*7 and the time in Tokyo?"}};
    r.tool_results = {
        {"call_a", "calculator", R"({"expression":"6*7"})", R"({"success":true,"result":42})"},
        {"call_b", "datetime", R"("{\"timezone\": To")", R"({"success":false,"error":"x"})"}};
    auto body = json::parse(openai_request_body(o, r)).as_object();
    CHECK(body.at("model") == "gpt-4o-mini");
    CHECK(body.at("stream") == true);
    CHECK(body.at("stream_options").at("include_usage") == true);
    CHECK(body.at("max_tokens") == 256);
    auto const& m = body.at("messages").as_array();
    REQUIRE(m.size() == 6);
    CHECK(m[0].at("role") == "system");
    CHECK(m[0].at("content") == "Be brief.");
    CHECK(m[1].at("role") == "user");
    CHECK(m[2].at("role") == "assistant");
    CHECK(m[2].at("content").is_null());
    auto const& call = m[2].at("tool_calls").at(0);
    CHECK(call.at("id") == "call_a");
    CHECK(call.at("type") == "function");
    CHECK(call.at("function").at("name") == "calculator");
    CHECK(call.at("function").at("arguments") ==
          R"({"expression":"6*7"})"); // a string, as OpenAI wants
    CHECK(m[3].at("role") == "tool");
    CHECK(m[3].at("tool_call_id") == "call_a");
    CHECK(m[3].at("content") == R"({"success":true,"result":42})");
    // Wrapped invalid arguments go back as the raw text the model wrote.
    CHECK(m[4].at("tool_calls").at(0).at("function").at("arguments") == R"({"timezone": To)");
    auto const& tools = body.at("tools").as_array();
    REQUIRE(tools.size() == 2);
    CHECK(tools[0].at("type") == "function");
    CHECK(tools[0].at("function").at("name") == "calculator");
    CHECK(tools[0].at("function").at("parameters").at("required").at(0) == "expression");

    SECTION("the request's model wins; a conversation system message replaces the default")
    {
        r.model = "gpt-4.1";
        r.messages.insert(r.messages.begin(), {"system", "You are a pirate."});
        auto b = json::parse(openai_request_body(o, r)).as_object();
        CHECK(b.at("model") == "gpt-4.1");
        CHECK(b.at("messages").at(0).at("content") == "You are a pirate.");
        CHECK(b.at("messages").at(1).at("role") == "user");
    }
    SECTION("no model and no tools: the fields are left out")
    {
        openai_options bare;
        auto b =
            json::parse(openai_request_body(bare, {{{"user", "hi"}}, {}, {}, 0, 0})).as_object();
        CHECK_FALSE(b.contains("model"));
        CHECK_FALSE(b.contains("tools"));
        CHECK(b.at("messages").as_array().size() == 1);
    }
    SECTION("a tool schema that is not an object is refused")
    {
        o.tools.push_back({"bad", "", "[1]"});
        CHECK_THROWS_AS(openai_request_body(o, r), std::invalid_argument);
    }
}

TEST_CASE("openai HTTP errors become user-facing messages", "[streaming][openai]")
{
    auto const openai_401 =
        R"({"error":{"message":"Incorrect API key provided: sk-abc. You can find your API key at ...","type":"invalid_request_error","code":"invalid_api_key"}})";
    auto m = openai_http_error_message(401, openai_401, {}, "sk-abc");
    CHECK_THAT(m, Contains("rejected the API key (HTTP 401)"));
    CHECK_THAT(m, !Contains("sk-abc"));
    CHECK_THAT(m, !Contains("Incorrect"));

    m = openai_http_error_message(
        429, R"({"error":{"message":"Rate limit reached for gpt-4o","type":"requests"}})", "20");
    CHECK(
        m ==
        "upstream rate limit reached (HTTP 429), retry after 20 s: Rate limit reached for gpt-4o");

    CHECK(openai_http_error_message(500, R"({"error":"boom"})") ==
          "upstream error (HTTP 500): boom");
    CHECK(openai_http_error_message(503, R"({"detail":"Model is loading"})") ==
          "upstream error (HTTP 503): Model is loading");
    CHECK(openai_http_error_message(502, "<html><body>Bad Gateway</body></html>") ==
          "upstream error (HTTP 502)");
    CHECK(
        openai_http_error_message(404, R"({"error":{"message":"The model `x` does not exist"}})") ==
        "upstream has no such model or endpoint (HTTP 404): The model `x` does not exist");
    CHECK(openai_http_error_message(400, "context too long") ==
          "upstream rejected the request (HTTP 400): context too long");
    auto const long_message = openai_http_error_message(500, std::string(1000, 'y'));
    CHECK(long_message.size() < 400);
}

TEST_CASE(
    "openai decoder: reasoning_content and reasoning, before the answer, with reasoning tokens",
    "[streaming][openai][reasoning]")
{
    for (auto const* field : {"reasoning_content", "reasoning"})
    {
        INFO(field);
        auto const body = reasoning_stream(field);
        auto const s = decode(body);
        CHECK(s->error.empty());
        CHECK(s->log == std::vector<std::string>{"reasoning:Let me", "reasoning: think: 6×7 🤔",
                                                 "text:42", "text: it is.", "finish:stop"});
        CHECK(s->usage.output_tokens == 30);
        CHECK(s->usage.reasoning_tokens == 24);
        // Every cut point of the body, inside UTF-8 sequences included.
        for (std::size_t cut = 0; cut <= body.size(); ++cut)
        {
            auto sink = std::make_shared<test::recording_sink>();
            openai_stream_decoder d(sink);
            d.feed(std::string_view(body).substr(0, cut));
            d.feed(std::string_view(body).substr(cut));
            CHECK(sink->log == s->log);
        }
    }
}

TEST_CASE("think tags: split out of the content wherever the chunks cut them",
          "[streaming][openai][reasoning]")
{
    std::string const content = "<think>Let me think 🤔.</think>\n\nThe answer is 42 — done.";
    // Every way of cutting the content into three chunks, tags cut included.
    for (std::size_t a = 0; a <= content.size(); ++a)
        for (std::size_t b = a; b <= content.size(); ++b)
        {
            std::string reasoning, text;
            think_tag_splitter split;
            auto out = [&](bool thinking, std::string_view piece)
            {
                CHECK(!piece.empty());
                (thinking ? reasoning : text) += piece;
            };
            // The decoder hands over whole code points only.
            auto feed = [&](std::string_view piece) { split.feed(piece, out); };
            auto const p1 = std::string_view(content).substr(0, a);
            auto const p2 = std::string_view(content).substr(a, b - a);
            auto const p3 = std::string_view(content).substr(b);
            if (!core::is_valid_utf8(p1) || !core::is_valid_utf8(p2) || !core::is_valid_utf8(p3))
                continue;
            feed(p1);
            feed(p2);
            feed(p3);
            split.finish(out);
            INFO("cuts at " << a << ", " << b);
            CHECK(reasoning == "Let me think 🤔.");
            CHECK(text == "\n\nThe answer is 42 — done.");
        }
    SECTION("a lone '<' and an unclosed tag are text, an unclosed think is reasoning")
    {
        std::string reasoning, text;
        think_tag_splitter split;
        auto out = [&](bool thinking, std::string_view piece)
        { (thinking ? reasoning : text) += piece; };
        split.feed("a < b <thi", out);
        CHECK(text == "a < b "); // "<thi" held back: it may be a tag
        split.feed("s is not a tag <think>still thinking", out);
        split.finish(out);
        CHECK(text == "a < b <this is not a tag ");
        CHECK(reasoning == "still thinking");
    }
}

TEST_CASE("openai decoder: --think-tags splits the streamed content, off by default",
          "[streaming][openai][reasoning]")
{
    auto const body = content_chunk("<thi") + content_chunk("nk>Hmm, 🤔") +
                      content_chunk(" ok</") + content_chunk("think>Yes.") + finish_chunk("stop") +
                      done;
    auto const split = decode(body, 0, true);
    CHECK(split->reasoning() == "Hmm, 🤔 ok");
    CHECK(split->text() == "Yes.");
    for (auto const& r : split->reasonings)
        CHECK(core::is_valid_utf8(r));
    for (std::size_t piece : {1, 2, 3, 5})
    {
        auto const s = decode(body, piece, true);
        CHECK(s->reasoning() == "Hmm, 🤔 ok");
        CHECK(s->text() == "Yes.");
    }
    auto const plain = decode(body);
    CHECK(plain->reasonings.empty());
    CHECK(plain->text() == "<think>Hmm, 🤔 ok</think>Yes.");
}

TEST_CASE("openai request body: earlier reasoning goes back only with --send-reasoning",
          "[streaming][openai][reasoning]")
{
    provider_request req;
    req.messages = {
        {"user", "hi", ""}, {"assistant", "hello", "they greet me"}, {"user", "again", ""}};
    openai_options o;
    o.base_url = "http://127.0.0.1:1";
    auto body = json::parse(openai_request_body(o, req)).as_object();
    CHECK_FALSE(body.at("messages").as_array().at(1).as_object().contains("reasoning_content"));
    o.send_reasoning = true;
    body = json::parse(openai_request_body(o, req)).as_object();
    auto const& messages = body.at("messages").as_array();
    CHECK(messages.at(1).at("reasoning_content").as_string() == "they greet me");
    CHECK_FALSE(messages.at(0).as_object().contains("reasoning_content")); // users have none
}
