// The openai provider's stream decoder: SSE chunks of a chat completion
// into provider_sink callbacks (text, reasoning, tool calls, usage), and the
// <think> tag splitter of --think-tags.
#include "chatstream/streaming/openai_provider.hpp"
#include "providers/openai_text.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/sse_parser.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <stdexcept>

namespace chatstream::streaming
{

using namespace openai_text;

struct openai_stream_decoder::impl
{
    struct call
    {
        std::string id;
        std::string name;
        std::string args;
        bool started = false;
    };

    std::shared_ptr<provider_sink> sink;
    int step = 0;
    std::string secret;
    sse_parser sse;
    simdjson::dom::parser parser;
    std::string carry; // bytes of a code point not yet whole
    std::string reasoning_carry;
    bool think_tags = false;
    think_tag_splitter splitter;
    std::map<std::int64_t, call> calls; // by `index`, in order
    std::optional<std::string> finish_reason;
    step_usage usage;

    // Calls the sink through a local reference, so a cancel from inside the
    // call (which drops `sink`) cannot destroy it under our feet. Returns
    // false once the sink is gone.
    template <class F> bool emit(F&& f)
    {
        if (!sink)
            return false;
        auto s = sink;
        f(*s);
        return sink != nullptr;
    }

    void fail(std::string_view message)
    {
        if (auto s = std::move(sink))
            s->on_error(redact(std::string(message), secret));
    }

    void feed(std::string_view bytes)
    {
        if (!sink)
            return;
        sse.feed(bytes);
        while (sink)
        {
            auto ev = sse.next();
            if (!ev)
                break;
            on_event(*ev);
        }
        if (sink && sse.failed())
            fail("upstream sent an oversized stream event");
    }

    void on_event(sse_event const& ev)
    {
        if (ev.type == "error")
            return fail("upstream error: " + shorten(ev.data));
        if (ev.type != "message")
            return; // e.g. `event: ping`
        auto const data = trim(ev.data);
        if (data == "[DONE]")
            return complete();
        simdjson::dom::element doc;
        if (auto err = parser.parse(data.data(), data.size()).get(doc))
            return fail(std::string("upstream sent malformed JSON in the stream: ") +
                        simdjson::error_message(err));
        simdjson::dom::object root;
        if (doc.get(root))
            return fail("upstream sent a stream chunk that is not a JSON object");

        simdjson::dom::element error;
        if (!root["error"].get(error) && !error.is_null())
        {
            std::string text = shorten(upstream_message(simdjson::to_string(error)));
            return fail(text.empty() ? "upstream error" : "upstream error: " + text);
        }
        simdjson::dom::array choices;
        if (!root["choices"].get(choices))
            for (auto choice : choices)
            {
                on_choice(choice);
                if (!sink)
                    return;
            }
        simdjson::dom::object u;
        if (!root["usage"].get(u))
        {
            usage.input_tokens = number(u["prompt_tokens"]);
            usage.output_tokens = number(u["completion_tokens"]);
            simdjson::dom::object details;
            if (!u["completion_tokens_details"].get(details))
                usage.reasoning_tokens = number(details["reasoning_tokens"]);
        }
    }

    static std::int64_t number(simdjson::simdjson_result<simdjson::dom::element> v)
    {
        std::int64_t i = 0;
        if (!v.get(i))
            return i;
        double d = 0;
        if (!v.get(d))
            return static_cast<std::int64_t>(d);
        return 0;
    }

    void on_choice(simdjson::dom::element choice)
    {
        std::int64_t index = 0;
        // We ask for one completion; a server that sends more only has its first used.
        if (!choice["index"].get(index) && index != 0)
            return;
        simdjson::dom::object delta;
        if (!choice["delta"].get(delta))
        {
            // DeepSeek, vLLM and llama.cpp say `reasoning_content`, OpenRouter `reasoning`.
            std::string_view thought;
            if ((!delta["reasoning_content"].get(thought) || !delta["reasoning"].get(thought)) &&
                !thought.empty() && !reasoning(thought))
                return;
            std::string_view content;
            if (!delta["content"].get(content) && !content.empty() && !text(content))
                return;
            simdjson::dom::array calls_delta;
            if (!delta["tool_calls"].get(calls_delta))
            {
                std::int64_t position = 0;
                for (auto c : calls_delta)
                {
                    if (!on_tool_delta(c, position++))
                        return;
                }
            }
        }
        std::string_view reason;
        if (!choice["finish_reason"].get(reason))
            finish_reason = std::string(reason);
    }

    // Whole code points only. simdjson has validated the UTF-8 of each chunk,
    // so the carry only ever holds a tail split by a server that cuts
    // sequences across chunks with escapes; kept for safety.
    bool text(std::string_view t)
    {
        carry.append(t);
        auto const n = core::complete_utf8_prefix(carry);
        if (n == 0)
            return true;
        bool const alive = think_tags ? split(std::string_view(carry).substr(0, n))
                                      : emit([&](provider_sink& s)
                                             { s.on_text(std::string_view(carry).substr(0, n)); });
        carry.erase(0, n);
        return alive;
    }

    bool reasoning(std::string_view t)
    {
        reasoning_carry.append(t);
        auto const n = core::complete_utf8_prefix(reasoning_carry);
        if (n == 0)
            return true;
        bool const alive =
            emit([&](provider_sink& s)
                 { s.on_reasoning(std::string_view(reasoning_carry).substr(0, n)); });
        reasoning_carry.erase(0, n);
        return alive;
    }

    // --think-tags: content split into the answer and `<think>` reasoning.
    bool split(std::string_view whole)
    {
        bool alive = true;
        splitter.feed(whole,
                      [&](bool thinking, std::string_view piece)
                      {
                          if (alive)
                              alive =
                                  emit([&](provider_sink& s)
                                       { thinking ? s.on_reasoning(piece) : s.on_text(piece); });
                      });
        return alive;
    }

    bool on_tool_delta(simdjson::dom::element d, std::int64_t position)
    {
        std::int64_t index = position;
        if (d["index"].get(index))
            index = position; // lenient: a missing index is the position
        auto& c = calls[index];
        std::string_view id;
        if (!d["id"].get(id) && !id.empty() && c.id.empty() && !id_in_use(id))
            c.id = std::string(id);
        std::string_view name;
        std::string_view fragment;
        simdjson::dom::object fn;
        if (!d["function"].get(fn))
        {
            // Some servers repeat the whole name in every delta; others could
            // send it in pieces before the call starts.
            if (!fn["name"].get(name) && !name.empty() && !c.started && name != c.name)
                c.name += name;
            if (fn["arguments"].get(fragment))
                fragment = {};
        }
        bool const was_started = c.started;
        c.args.append(fragment);
        if (!c.started && !c.name.empty())
        {
            if (c.id.empty())
                c.id = "call_" + std::to_string(step) + "_" + std::to_string(index);
            c.started = true;
            if (!emit([&](provider_sink& s) { s.on_tool_input_start(c.id, c.name); }))
                return false;
            if (!c.args.empty())
                return emit([&](provider_sink& s) { s.on_tool_input_delta(c.id, c.args); });
        }
        else if (was_started && !fragment.empty())
            return emit([&](provider_sink& s) { s.on_tool_input_delta(c.id, fragment); });
        return true;
    }

    bool id_in_use(std::string_view id) const
    {
        for (auto const& [i, c] : calls)
            if (c.id == id)
                return true;
        return false;
    }

    void complete()
    {
        if (think_tags)
        {
            bool alive = true;
            splitter.finish(
                [&](bool thinking, std::string_view piece)
                {
                    if (alive)
                        alive = emit([&](provider_sink& s)
                                     { thinking ? s.on_reasoning(piece) : s.on_text(piece); });
                });
            if (!alive)
                return;
        }
        for (auto const& [index, c] : calls)
            if (!c.started)
                return fail("upstream sent a tool call without a function name");
        for (auto& entry : calls)
        {
            auto const& c = entry.second; // not a structured binding: lambdas below capture it
            auto raw = trim(c.args);
            if (raw.empty())
                raw = "{}";
            // Invalid arguments stay visible as a JSON string of the raw text;
            // the tool then fails with "arguments must be a JSON object".
            auto args = core::canonical_json(raw).value_or(core::json_string(c.args));
            if (!emit([&](provider_sink& s) { s.on_tool_call(c.id, c.name, args); }))
                return;
        }
        auto reason = map_finish_reason(finish_reason.value_or("stop"));
        // Some servers say "stop" after tool calls; the engine loops on "tool-calls".
        if (!calls.empty() && reason == "stop")
            reason = "tool-calls";
        if (auto s = std::move(sink))
            s->on_step_finish(reason, usage);
    }

    void end_of_stream()
    {
        if (!sink)
            return;
        // Lenient: a server that ends the body after the finish chunk without
        // `[DONE]` still finished its answer.
        if (finish_reason)
            return complete();
        fail("upstream closed the stream before the answer was finished");
    }
};

openai_stream_decoder::openai_stream_decoder(std::shared_ptr<provider_sink> sink, int step,
                                             std::string secret, bool think_tags)
    : impl_(std::make_unique<impl>())
{
    impl_->sink = std::move(sink);
    impl_->step = step;
    impl_->secret = std::move(secret);
    impl_->think_tags = think_tags;
}

//------------------------------------------------------------------------------

void think_tag_splitter::feed(std::string_view text,
                              std::function<void(bool, std::string_view)> const& out)
{
    static constexpr std::string_view open = "<think>";
    static constexpr std::string_view close = "</think>";
    held_.append(text);
    std::string_view rest(held_);
    for (;;)
    {
        auto const tag = thinking_ ? close : open;
        auto const at = rest.find(tag);
        if (at == std::string_view::npos)
            break;
        if (at > 0)
            out(thinking_, rest.substr(0, at));
        thinking_ = !thinking_;
        rest.remove_prefix(at + tag.size());
    }
    // Hold back a tail that may be the start of the next tag ("<thi", "</"),
    // cut across chunks; everything before it goes out now.
    auto const tag = thinking_ ? close : open;
    std::size_t keep = 0;
    for (std::size_t n = std::min(rest.size(), tag.size() - 1); n > 0; --n)
        if (rest.substr(rest.size() - n) == tag.substr(0, n))
        {
            keep = n;
            break;
        }
    if (rest.size() > keep)
        out(thinking_, rest.substr(0, rest.size() - keep));
    held_ = std::string(rest.substr(rest.size() - keep));
}

void think_tag_splitter::finish(std::function<void(bool, std::string_view)> const& out)
{
    if (!held_.empty())
        out(thinking_, held_);
    held_.clear();
}

openai_stream_decoder::~openai_stream_decoder() = default;

void openai_stream_decoder::feed(std::string_view bytes)
{
    impl_->feed(bytes);
}

void openai_stream_decoder::end_of_stream()
{
    impl_->end_of_stream();
}

void openai_stream_decoder::fail(std::string_view message)
{
    impl_->fail(message);
}

void openai_stream_decoder::detach() noexcept
{
    impl_->sink.reset();
}

bool openai_stream_decoder::done() const noexcept
{
    return !impl_->sink;
}

} // namespace chatstream::streaming
