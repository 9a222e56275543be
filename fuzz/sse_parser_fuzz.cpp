// libFuzzer target: SSE framing and the chat-completions decoder on arbitrary
// bytes cut at arbitrary places. The first byte picks the piece size.
// Properties: parsing in pieces gives exactly the events of parsing whole;
// the decoder ends a step at most once, never calls the sink after that, and
// only hands whole UTF-8 code points to on_text.
#include "chatstream/streaming/sse_parser.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/openai_provider.hpp"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

namespace
{

using namespace chatstream::streaming;

std::vector<sse_event> parse(std::string_view s, std::size_t piece)
{
    sse_parser p(4096);
    std::vector<sse_event> out;
    for (std::size_t i = 0; i < s.size(); i += piece)
    {
        p.feed(s.substr(i, piece));
        while (auto e = p.next())
            out.push_back(std::move(*e));
    }
    return out;
}

struct checking_sink : provider_sink
{
    bool ended = false;
    void check()
    {
        if (ended)
            std::abort();
    }
    void on_text(std::string_view t) override
    {
        check();
        if (t.empty() || chatstream::core::complete_utf8_prefix(t) != t.size())
            std::abort();
    }
    void on_tool_input_start(std::string_view, std::string_view) override { check(); }
    void on_tool_input_delta(std::string_view, std::string_view) override { check(); }
    void on_tool_call(std::string_view, std::string_view, std::string_view args) override
    {
        check();
        if (args.empty())
            std::abort();
    }
    void on_step_finish(std::string_view, step_usage) override
    {
        check();
        ended = true;
    }
    void on_error(std::string_view) override
    {
        check();
        ended = true;
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    std::size_t const piece = data[0] % 13 + 1;
    std::string_view const s(reinterpret_cast<char const*>(data + 1), size - 1);

    auto const whole = parse(s, s.size() + 1);
    auto const cut = parse(s, piece);
    if (whole.size() != cut.size())
        std::abort();
    for (std::size_t i = 0; i < whole.size(); ++i)
        if (whole[i].data != cut[i].data || whole[i].type != cut[i].type ||
            whole[i].id != cut[i].id)
            std::abort();

    auto sink = std::make_shared<checking_sink>();
    openai_stream_decoder d(sink);
    for (std::size_t i = 0; i < s.size(); i += piece)
        d.feed(s.substr(i, piece));
    d.end_of_stream();
    if (!sink->ended || !d.done())
        std::abort(); // every body ends the step one way or the other
    return 0;
}
