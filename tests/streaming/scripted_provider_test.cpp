#include "chatstream/streaming/provider.hpp"

#include "chatstream/core/utf16.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::streaming;

namespace
{

struct recording_sink : provider_sink
{
    std::vector<std::string> texts;
    std::vector<std::string> log;
    std::string finish_reason;
    step_usage usage;
    std::string error;
    std::shared_ptr<provider_stream> stream;
    std::size_t cancel_after = 0;

    void on_text(std::string_view t) override
    {
        texts.emplace_back(t);
        log.push_back("text");
        if (cancel_after && texts.size() == cancel_after)
            stream->cancel();
    }
    void on_tool_input_start(std::string_view id, std::string_view name) override
    {
        log.push_back("start:" + std::string(id) + ":" + std::string(name));
    }
    void on_tool_input_delta(std::string_view, std::string_view d) override
    {
        log.push_back("delta:" + std::string(d));
    }
    void on_tool_call(std::string_view, std::string_view name, std::string_view args) override
    {
        log.push_back("call:" + std::string(name) + ":" + std::string(args));
    }
    void on_step_finish(std::string_view reason, step_usage u) override
    {
        finish_reason = reason;
        usage = u;
        log.push_back("finish");
    }
    void on_error(std::string_view message) override
    {
        error = message;
        log.push_back("error");
    }
};

std::shared_ptr<recording_sink> run(provider_request req, std::size_t cancel_after = 0)
{
    boost::asio::io_context ioc;
    auto p = make_scripted_provider({});
    auto sink = std::make_shared<recording_sink>();
    sink->cancel_after = cancel_after;
    sink->stream = p->start(ioc.get_executor(), std::move(req), sink);
    ioc.run();
    sink->stream.reset();
    return sink;
}

provider_request user(std::string content)
{
    provider_request r;
    r.messages.push_back({"user", std::move(content)});
    return r;
}

} // namespace

TEST_CASE("directives are parsed from the user message", "[streaming][scripted]")
{
    auto d = parse_directives(
        R"(please /tokens 12 then /tool calculator {"expression": "1 + {2}"} /delay 5 /fail 3)");
    CHECK(d.tokens == 12u);
    CHECK(d.delay_ms == 5);
    CHECK(d.fail_after == 3u);
    CHECK(d.tool_name == "calculator");
    CHECK(d.tool_args == R"({"expression":"1 + {2}"})");

    auto none = parse_directives("a/tokens 5 /tokens x /tool");
    CHECK_FALSE(none.tokens);
    CHECK_FALSE(none.tool_name);
    CHECK(parse_directives("/tool datetime").tool_args == "{}");
}

TEST_CASE("/tokens N gives exactly N whole-code-point tokens with surrogate pairs",
          "[streaming][scripted]")
{
    auto s = run(user("/tokens 1000"));
    CHECK(s->texts.size() == 1000);
    CHECK(s->usage.output_tokens == 1000);
    CHECK(s->usage.input_tokens == 2);
    CHECK(s->finish_reason == "stop");
    std::string all;
    bool surrogate_pair = false;
    for (auto const& t : s->texts)
    {
        CHECK(core::is_valid_utf8(t));
        CHECK(core::complete_utf8_prefix(t) == t.size());
        if (core::utf16_length(t) > 0 && t.find("\xF0") != std::string::npos)
            surrogate_pair = true;
        all += t;
    }
    CHECK(surrogate_pair);
    CHECK(all.find("é") != std::string::npos);
    CHECK(all.find("日本語") != std::string::npos);
}

TEST_CASE("/tool emits text, a streamed call, and then uses the result", "[streaming][scripted]")
{
    auto s = run(user(R"(/tool calculator {"expression":"6*7"})"));
    CHECK(s->finish_reason == "tool-calls");
    std::vector<std::string> tail(s->log.end() - 5, s->log.end());
    CHECK(tail[0] == "start:call_0_calculator:calculator");
    REQUIRE(tail[1].starts_with("delta:"));
    REQUIRE(tail[2].starts_with("delta:"));
    CHECK(tail[1].substr(6) + tail[2].substr(6) == R"({"expression":"6*7"})");
    CHECK(tail[3] == R"(call:calculator:{"expression":"6*7"})");
    CHECK(tail[4] == "finish");

    auto step2 = user(R"(/tool calculator {"expression":"6*7"})");
    step2.step = 1;
    step2.tool_results.push_back(
        {"call_0_calculator", "calculator", R"({"expression":"6*7"})", R"({"result":42})"});
    auto s2 = run(step2);
    CHECK(s2->finish_reason == "stop");
    std::string text;
    for (auto const& t : s2->texts)
        text += t;
    CHECK(text.find(R"({"result":42})") != std::string::npos);
}

TEST_CASE("/fail N errors after N tokens", "[streaming][scripted]")
{
    auto s = run(user("/fail 4"));
    CHECK(s->texts.size() == 4);
    CHECK(s->log.back() == "error");
    CHECK(s->error.find("after 4 tokens") != std::string::npos);

    auto partial = run(user("/tokens 10 /fail 3"));
    CHECK(partial->texts.size() == 3);
    CHECK(partial->log.back() == "error");
}

TEST_CASE("cancel stops the stream: no further sink calls", "[streaming][scripted]")
{
    auto s = run(user("/tokens 100"), 10);
    CHECK(s->texts.size() == 10);
    CHECK(s->log.back() == "text");
}

TEST_CASE("without directives the reply is a short canned answer", "[streaming][scripted]")
{
    auto s = run(user("hi"));
    CHECK(s->finish_reason == "stop");
    CHECK(s->texts.size() > 3);
    CHECK(s->texts.front() == "Hello!");
}
