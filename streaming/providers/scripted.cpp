// The scripted provider: replies are driven by directives in the user
// message, so tests and benchmarks control length, tools, failures and pace.
#include "chatstream/streaming/provider.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cctype>
#include <charconv>
#include <deque>

namespace chatstream::streaming
{
namespace
{

namespace net = boost::asio;

constexpr std::string_view vocabulary[] = {
    "Hello", ",",  " world", " café", " naïve", " 日本語", " 🙂",   " 中文", " résumé",   " 🚀",
    " ok",   " Ω", " 𝄞",     ".",     " 😀😃",    " über",   " 한국어", " test", " 👍🏽", "\n",
};

constexpr std::string_view canned_answer =
    "Hello! I am the scripted provider. Send /tokens N, /tool calculator {\"expression\":\"6*7\"}, "
    "/fail N or /delay MS to drive me.";

// Splits @p text into word tokens that keep their leading space.
std::vector<std::string> words(std::string_view text)
{
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size())
    {
        std::size_t j = i;
        while (j < text.size() && text[j] == ' ')
            ++j;
        while (j < text.size() && text[j] != ' ')
            ++j;
        out.emplace_back(text.substr(i, j - i));
        i = j;
    }
    return out;
}

std::size_t count_words(std::string_view text)
{
    std::size_t n = 0;
    bool in_word = false;
    for (char c : text)
    {
        bool const space = std::isspace(static_cast<unsigned char>(c)) != 0;
        if (!space && !in_word)
            ++n;
        in_word = !space;
    }
    return n;
}

// Length of the JSON object at the start of @p s (brace matching that
// respects strings), or 0 when there is none.
std::size_t json_object_length(std::string_view s)
{
    if (s.empty() || s[0] != '{')
        return 0;
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i)
    {
        char const c = s[i];
        if (in_string)
        {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        }
        else if (c == '"')
            in_string = true;
        else if (c == '{')
            ++depth;
        else if (c == '}' && --depth == 0)
            return i + 1;
    }
    return 0;
}

std::optional<std::size_t> number_after(std::string_view s, std::size_t& pos)
{
    while (pos < s.size() && s[pos] == ' ')
        ++pos;
    std::size_t v = 0;
    auto r = std::from_chars(s.data() + pos, s.data() + s.size(), v);
    if (r.ec != std::errc{})
        return std::nullopt;
    pos = static_cast<std::size_t>(r.ptr - s.data());
    return v;
}

struct action
{
    enum kind_t
    {
        text,
        tool_start,
        tool_delta,
        tool_call,
        vocabulary, ///< `count` tokens of the scripted vocabulary, made one at a time
        thinking,   ///< likewise, as reasoning (`/think N`)
        source,     ///< `/source URL [TITLE]`: a = URL, b = title
    } kind;
    std::string a;         // text / id
    std::string b;         // name / delta / args
    std::string c;         // name for tool_call
    std::size_t count = 0; ///< vocabulary: how many tokens
    std::size_t next = 0;  ///< vocabulary: the next one's index

    /// Emits a token (text or one of a vocabulary run) when taken.
    bool is_text() const noexcept { return kind == text || kind == vocabulary || kind == thinking; }
};

class scripted_stream : public provider_stream, public std::enable_shared_from_this<scripted_stream>
{
public:
    scripted_stream(net::any_io_executor ex, std::shared_ptr<provider_sink> sink,
                    std::deque<action> actions, std::chrono::milliseconds delay,
                    std::optional<std::size_t> fail_after, std::int64_t tokens_before,
                    std::string finish_reason, step_usage usage)
        : timer_(ex), sink_(std::move(sink)), actions_(std::move(actions)), delay_(delay),
          fail_after_(fail_after), tokens_total_(tokens_before),
          finish_reason_(std::move(finish_reason)), usage_(usage)
    {
    }

    void run()
    {
        net::post(timer_.get_executor(), [self = shared_from_this()] { self->step(); });
    }

    void cancel() override
    {
        sink_.reset();
        timer_.cancel();
    }

private:
    void step()
    {
        // Zero delay: emit a few actions per turn, then yield to the strand so
        // other work (cancel, subscribers, other generations) gets its turn.
        for (int burst = 0; burst < 8; ++burst)
        {
            if (!sink_)
                return;
            if (fail_after_ && static_cast<std::size_t>(tokens_total_) >= *fail_after_ &&
                (actions_.empty() || actions_.front().is_text()))
                return fail();
            if (actions_.empty())
            {
                // A /fail beyond the reply fails at its end, but never in
                // the middle of a tool loop (the next step may still fail).
                if (fail_after_ && finish_reason_ != "tool-calls")
                    return fail();
                auto sink = std::move(sink_);
                return sink->on_step_finish(finish_reason_, usage_);
            }
            if (auto& run = actions_.front();
                run.kind == action::vocabulary || run.kind == action::thinking)
            {
                // Made on the fly: a `/tokens 200000` reply must not hold
                // 200,000 strings for its whole life.
                ++tokens_total_;
                ++usage_.output_tokens; // reasoning is output too, as upstreams count it
                bool const thinking = run.kind == action::thinking;
                if (thinking)
                    ++usage_.reasoning_tokens;
                auto const token = scripted_token(run.next++);
                if (run.next >= run.count)
                    actions_.pop_front();
                if (thinking)
                    sink_->on_reasoning(token);
                else
                    sink_->on_text(token);
                if (delay_.count() > 0)
                    break;
                continue;
            }
            auto a = std::move(actions_.front());
            actions_.pop_front();
            switch (a.kind)
            {
            case action::vocabulary:
            case action::thinking:
                break; // handled above
            case action::text:
                ++tokens_total_;
                ++usage_.output_tokens;
                sink_->on_text(a.a);
                break;
            case action::tool_start:
                sink_->on_tool_input_start(a.a, a.b);
                break;
            case action::tool_delta:
                sink_->on_tool_input_delta(a.a, a.b);
                break;
            case action::tool_call:
                sink_->on_tool_call(a.a, a.c, a.b);
                break;
            case action::source:
                sink_->on_source({a.a, a.b.empty() ? std::nullopt : std::optional(a.b), {}, {}});
                break;
            }
            if (a.kind == action::text && delay_.count() > 0)
                break;
        }
        if (!sink_)
            return;
        if (delay_.count() > 0 && (actions_.empty() || actions_.front().is_text()))
        {
            timer_.expires_after(delay_);
            timer_.async_wait(
                [self = shared_from_this()](boost::system::error_code ec)
                {
                    if (!ec)
                        self->step();
                });
        }
        else
            net::post(timer_.get_executor(), [self = shared_from_this()] { self->step(); });
    }

    void fail()
    {
        auto sink = std::move(sink_);
        sink->on_error("scripted upstream failure after " + std::to_string(tokens_total_) +
                       " tokens");
    }

    net::steady_timer timer_;
    std::shared_ptr<provider_sink> sink_;
    std::deque<action> actions_;
    std::chrono::milliseconds delay_;
    std::optional<std::size_t> fail_after_;
    std::int64_t tokens_total_;
    std::string finish_reason_;
    step_usage usage_;
};

// Spreads @p sources along the answer in actions[from..]: source k of n is
// cited after token k * T / (n + 1) of its T tokens, a vocabulary run split
// where a citation falls inside it.
void cite_along(std::deque<action>& actions, std::size_t from,
                std::vector<cited_source> const& sources)
{
    if (sources.empty())
        return;
    std::size_t total = 0;
    for (auto i = from; i < actions.size(); ++i)
        total += actions[i].kind == action::vocabulary ? actions[i].count - actions[i].next
                 : actions[i].kind == action::text     ? 1
                                                       : 0;
    auto const n = sources.size();
    auto const due = [&](std::size_t k) { return (k + 1) * total / (n + 1); };
    std::deque<action> out(actions.begin(), actions.begin() + static_cast<std::ptrdiff_t>(from));
    std::size_t seen = 0;
    std::size_t k = 0;
    auto const cite_due = [&]
    {
        for (; k < n && due(k) <= seen; ++k)
            out.push_back({action::source, sources[k].url, sources[k].title.value_or(""), {}});
    };
    cite_due();
    for (auto i = from; i < actions.size(); ++i)
    {
        auto a = std::move(actions[i]);
        if (a.kind == action::vocabulary)
        {
            while (k < n && due(k) < seen + (a.count - a.next))
            {
                auto const cut = a.next + (due(k) - seen);
                out.push_back({action::vocabulary, {}, {}, {}, cut, a.next});
                seen += cut - a.next;
                a.next = cut;
                cite_due();
            }
            seen += a.count - a.next;
            if (a.next < a.count)
                out.push_back(std::move(a));
        }
        else
        {
            seen += a.kind == action::text ? 1 : 0;
            out.push_back(std::move(a));
        }
        cite_due();
    }
    for (; k < n; ++k)
        out.push_back({action::source, sources[k].url, sources[k].title.value_or(""), {}});
    actions = std::move(out);
}

class scripted_provider : public provider
{
public:
    explicit scripted_provider(scripted_options const& o) : options_(o) {}

    std::shared_ptr<provider_stream> start(net::any_io_executor ex, provider_request req,
                                           std::shared_ptr<provider_sink> sink) override
    {
        std::string_view const user =
            req.messages.empty() ? std::string_view{} : req.messages.back().content;
        auto const d = parse_directives(user);
        std::deque<action> actions;
        auto add_words = [&](std::string_view text)
        {
            for (auto& w : words(text))
                actions.push_back({action::text, std::move(w), {}, {}});
        };
        auto add_vocabulary = [&](std::size_t n)
        {
            if (n > 0)
                actions.push_back({action::vocabulary, {}, {}, {}, n, 0});
        };

        // `/think N`: every step thinks before it answers, as a reasoning
        // model in a tool loop does.
        if (d.think && *d.think > 0 && !req.title)
            actions.push_back({action::thinking, {}, {}, {}, *d.think, 0});

        std::string finish_reason = "stop";
        auto const answer_from = actions.size();
        if (req.title)
            add_words(scripted_title(user));
        else if (d.tool_name && req.tool_results.empty())
        {
            if (d.tokens)
                add_vocabulary(*d.tokens);
            else
                add_words("Let me use the " + *d.tool_name + " tool.");
            auto const id = "call_" + std::to_string(req.step) + "_" + *d.tool_name;
            actions.push_back({action::tool_start, id, *d.tool_name, {}});
            // The input arrives in two pieces, cut on a code point boundary.
            auto const& args = d.tool_args;
            auto const half =
                core::complete_utf8_prefix(std::string_view(args).substr(0, args.size() / 2));
            actions.push_back({action::tool_delta, id, args.substr(0, half), {}});
            actions.push_back({action::tool_delta, id, args.substr(half), {}});
            actions.push_back({action::tool_call, id, args, *d.tool_name});
            finish_reason = "tool-calls";
        }
        else if (!req.tool_results.empty())
        {
            auto const& last = req.tool_results.back();
            add_words(" The " + last.name + " tool returned " + last.result_json + ".");
        }
        else if (d.tokens)
            add_vocabulary(*d.tokens);
        else if (d.fail_after)
            add_vocabulary(*d.fail_after);
        else
            add_words(canned_answer);
        // The answer that ends the loop cites the sources (a tool-calling
        // step and a title request do not).
        if (!req.title && finish_reason == "stop")
            cite_along(actions, answer_from, d.sources);

        step_usage usage;
        for (auto const& m : req.messages)
            usage.input_tokens += static_cast<std::int64_t>(count_words(m.content));
        auto const delay =
            d.delay_ms ? std::chrono::milliseconds(*d.delay_ms) : options_.token_delay;
        auto s = std::make_shared<scripted_stream>(std::move(ex), std::move(sink),
                                                   std::move(actions), delay, d.fail_after,
                                                   req.output_tokens_so_far, finish_reason, usage);
        s->run();
        return s;
    }

private:
    scripted_options options_;
};

} // namespace

scripted_directives parse_directives(std::string_view s)
{
    scripted_directives d;
    std::size_t pos = 0;
    while ((pos = s.find('/', pos)) != std::string_view::npos)
    {
        // A directive starts a word.
        if (pos > 0 && !std::isspace(static_cast<unsigned char>(s[pos - 1])))
        {
            ++pos;
            continue;
        }
        auto rest = s.substr(pos);
        std::size_t p = pos;
        if (rest.starts_with("/tokens "))
        {
            p += 8;
            if (auto n = number_after(s, p))
                d.tokens = std::min<std::size_t>(*n, 1'000'000);
        }
        else if (rest.starts_with("/think "))
        {
            p += 7;
            if (auto n = number_after(s, p))
                d.think = std::min<std::size_t>(*n, 1'000'000);
        }
        else if (rest.starts_with("/fail "))
        {
            p += 6;
            if (auto n = number_after(s, p))
                d.fail_after = *n;
        }
        else if (rest.starts_with("/delay "))
        {
            p += 7;
            if (auto n = number_after(s, p))
                d.delay_ms = static_cast<int>(std::min<std::size_t>(*n, 60'000));
        }
        else if (rest.starts_with("/source "))
        {
            // `/source URL [TITLE]`: TITLE runs to the end of the line.
            p += 8;
            while (p < s.size() && s[p] == ' ')
                ++p;
            auto const url_start = p;
            while (p < s.size() && !std::isspace(static_cast<unsigned char>(s[p])))
                ++p;
            cited_source src;
            src.url = std::string(s.substr(url_start, p - url_start));
            auto const eol = std::min(s.find('\n', p), s.size());
            auto title = s.substr(p, eol - p);
            while (!title.empty() && std::isspace(static_cast<unsigned char>(title.front())))
                title.remove_prefix(1);
            while (!title.empty() && std::isspace(static_cast<unsigned char>(title.back())))
                title.remove_suffix(1);
            if (!title.empty())
                src.title = std::string(title);
            p = eol;
            if (!src.url.empty() && d.sources.size() < 64)
                d.sources.push_back(std::move(src));
        }
        else if (rest.starts_with("/tool "))
        {
            p += 6;
            while (p < s.size() && s[p] == ' ')
                ++p;
            auto const name_start = p;
            while (p < s.size() && !std::isspace(static_cast<unsigned char>(s[p])))
                ++p;
            std::string name(s.substr(name_start, p - name_start));
            while (p < s.size() && s[p] == ' ')
                ++p;
            std::string args = "{}";
            if (auto n = json_object_length(s.substr(p)))
            {
                if (auto canonical = core::canonical_json(s.substr(p, n)))
                    args = std::move(*canonical);
                p += n;
            }
            if (!name.empty())
            {
                d.tool_name = std::move(name);
                d.tool_args = std::move(args);
            }
        }
        else
            p += 1;
        pos = std::max(p, pos + 1);
    }
    return d;
}

std::string scripted_title(std::string_view content)
{
    enum class skip
    {
        none,
        argument,   // the word after /tokens, /fail, /delay, /think, /tool
        maybe_json, // a JSON object may follow /tool NAME
        json        // inside that object
    };
    std::string title;
    int words_taken = 0;
    skip mode = skip::none;
    bool tool = false;
    int depth = 0;
    std::size_t i = 0;
    while (i < content.size() && words_taken < 6)
    {
        while (i < content.size() && std::isspace(static_cast<unsigned char>(content[i])))
            ++i;
        auto const start = i;
        while (i < content.size() && !std::isspace(static_cast<unsigned char>(content[i])))
            ++i;
        auto const word = content.substr(start, i - start);
        if (word.empty())
            break;
        auto count_braces = [&]
        {
            for (char c : word)
                depth += c == '{' ? 1 : c == '}' ? -1 : 0;
            mode = depth > 0 ? skip::json : skip::none;
        };
        switch (mode)
        {
        case skip::argument:
            mode = tool ? skip::maybe_json : skip::none;
            continue;
        case skip::json:
            count_braces();
            continue;
        case skip::maybe_json:
            mode = skip::none;
            if (word.front() == '{')
            {
                depth = 0;
                count_braces();
                continue;
            }
            break;
        case skip::none:
            break;
        }
        if (word == "/source")
        {
            // Its URL and title run to the end of the line.
            i = std::min(content.find('\n', i), content.size());
            continue;
        }
        if (word.front() == '/')
        {
            tool = word == "/tool";
            if (tool || word == "/tokens" || word == "/fail" || word == "/delay" ||
                word == "/think")
                mode = skip::argument;
            continue;
        }
        if (!title.empty())
            title += ' ';
        title += word;
        ++words_taken;
    }
    while (!title.empty() &&
           std::string_view(".,;:!?").find(title.back()) != std::string_view::npos)
        title.pop_back();
    return title;
}

std::string_view scripted_token(std::size_t i) noexcept
{
    return vocabulary[i % std::size(vocabulary)];
}

std::unique_ptr<provider> make_scripted_provider(scripted_options const& options)
{
    return std::make_unique<scripted_provider>(options);
}

} // namespace chatstream::streaming
