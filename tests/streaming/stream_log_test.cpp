// The generation log read by cursors, without sockets: what a slow, a fast
// and a late reader get must be the same text at the same offsets, with
// every non-text event at its text position and the final event last.
#include "chatstream/streaming/stream_log.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace chatstream;
using namespace chatstream::streaming;
namespace json = boost::json;

namespace
{

/// What a reader saw, in order: "T<offset>:<text>" for text, the event
/// type for the rest.
struct reading
{
    std::string text;              ///< the concatenation of every text item
    std::vector<std::string> log;  ///< one line per item
    std::uint64_t next_offset = 0; ///< where the next text item must start
    bool contiguous = true;        ///< every text item started at next_offset
    std::string reasoning;         ///< the concatenation of every reasoning item
    std::uint64_t next_reasoning_offset = 0;
};

/// Pulls everything available past @p c into @p r. @return items read.
std::size_t drain(stream_log& log, stream_log::cursor& c, reading& r, std::size_t max_bytes,
                  std::size_t limit = SIZE_MAX)
{
    std::size_t n = 0;
    std::string text;
    frame event;
    std::uint64_t offset = 0;
    while (n < limit)
    {
        auto const got = log.next(c, text, offset, event, max_bytes);
        if (got == stream_log::item::none)
            break;
        ++n;
        if (got == stream_log::item::text)
        {
            r.contiguous = r.contiguous && offset == r.next_offset;
            r.next_offset = offset + core::utf16_length(text);
            r.text += text;
            r.log.push_back("T" + std::to_string(offset) + ":" + text);
        }
        else if (got == stream_log::item::reasoning)
        {
            r.contiguous = r.contiguous && offset == r.next_reasoning_offset;
            r.next_reasoning_offset = offset + core::utf16_length(text);
            r.reasoning += text;
            r.log.push_back("R" + std::to_string(offset) + ":" + text);
        }
        else
        {
            auto const v = json::parse(*event.data).as_object();
            r.log.push_back(std::string(v.at("type").as_string()));
        }
    }
    return n;
}

events::finish_info complete()
{
    events::finish_info f;
    f.status = "complete";
    f.finish_reason = "stop";
    return f;
}

/// A reply with ASCII, accents, CJK and a character outside the BMP (a
/// surrogate pair in UTF-16), as the scripted provider streams.
std::vector<std::string> const tokens = {"Hello", " wörld", " 漢字", " 😀", "!", " ok"};

class counting_listener : public log_listener
{
public:
    void on_log_ready() override { ++woken; }
    std::atomic<int> woken{0};
};

} // namespace

TEST_CASE("a slow reader gets the same text and offsets as a fast one", "[streaming][stream_log]")
{
    stream_log log("m1", "c1");
    stream_log::cursor fast, slow;
    reading f, s;
    for (std::size_t i = 0; i < tokens.size(); ++i)
    {
        log.append_text(tokens[i]);
        drain(log, fast, f, 1 << 14);
        if (i == 2)
            log.append_event(
                events::tool_input_start("m1", "call-1", "calculator", log.u16_length()));
    }
    log.close(events::finish("m1", complete()));
    drain(log, fast, f, 1 << 14);
    drain(log, slow, s, 1 << 14); // reads everything only at the end

    std::string all;
    for (auto const& t : tokens)
        all += t;
    CHECK(f.text == all);
    CHECK(s.text == all);
    CHECK(f.contiguous);
    CHECK(s.contiguous);
    CHECK(s.next_offset == core::utf16_length(all));
    // The fast reader saw one delta per token; the slow one merged them,
    // but cut at the tool call, which sits at its own text position.
    CHECK(f.log.front() == "start");
    CHECK(s.log.front() == "start");
    CHECK(f.log.back() == "finish");
    CHECK(s.log.back() == "finish");
    auto const prefix = tokens[0] + tokens[1] + tokens[2];
    std::vector<std::string> const expected_slow = {
        "start", "T0:" + prefix, "tool-input-start",
        "T" + std::to_string(core::utf16_length(prefix)) + ":" + tokens[3] + tokens[4] + tokens[5],
        "finish"};
    CHECK(s.log == expected_slow);
    CHECK(f.log.size() == 1 + tokens.size() + 1 + 1);
    // Nothing follows the final event.
    reading more;
    CHECK(drain(log, slow, more, 1 << 14) == 0);
    CHECK(slow.done);
}

TEST_CASE("text items are bounded and never split a code point", "[streaming][stream_log]")
{
    stream_log log("m1", "c1");
    std::string all;
    for (int i = 0; i < 200; ++i)
        for (auto const& t : tokens)
        {
            log.append_text(t);
            all += t;
        }
    log.close(events::finish("m1", complete()));
    stream_log::cursor c;
    reading r;
    drain(log, c, r, 7); // smaller than some tokens: cuts land everywhere
    CHECK(r.text == all);
    CHECK(r.contiguous);
    for (auto const& line : r.log)
        if (line[0] == 'T')
        {
            auto const text = line.substr(line.find(':') + 1);
            CHECK(text.size() <= 7);
            CHECK(core::complete_utf8_prefix(text) == text.size());
        }
}

TEST_CASE("a reader joining mid-stream starts at its offset and hears later events",
          "[streaming][stream_log]")
{
    stream_log log("m1", "c1");
    log.append_text("abc");
    log.append_event(events::tool_input_start("m1", "early", "calculator", 3));
    log.append_text("def😀");
    // An offset inside the surrogate pair rounds down to the pair's start.
    auto inside = log.cursor_at(7);
    REQUIRE(inside);
    reading ri;
    drain(log, *inside, ri, 1 << 14);
    CHECK(ri.log == std::vector<std::string>{"start", "T6:😀"});

    auto c = log.cursor_at(4); // after the tool call's position
    REQUIRE(c);
    reading r;
    drain(log, *c, r, 1 << 14);
    CHECK(r.log == std::vector<std::string>{"start", "T4:ef😀"});
    log.append_event(events::tool_input_start("m1", "late", "calculator", log.u16_length()));
    log.append_text("gh");
    log.close(events::finish("m1", complete()));
    drain(log, *c, r, 1 << 14);
    CHECK(r.log ==
          std::vector<std::string>{"start", "T4:ef😀", "tool-input-start", "T8:gh", "finish"});
    CHECK(!log.cursor_at(11)); // past the end
    // A reader from 0 replays the early tool call at its position.
    auto z = log.cursor_at(0);
    reading rz;
    drain(log, *z, rz, 1 << 14);
    CHECK(rz.log == std::vector<std::string>{"start", "T0:abc", "tool-input-start", "T3:def😀",
                                             "tool-input-start", "T8:gh", "finish"});
    // A reader at the very end of a finished log still hears how it ended.
    auto end = log.cursor_at(10);
    REQUIRE(end);
    reading re;
    drain(log, *end, re, 1 << 14);
    CHECK(re.log == std::vector<std::string>{"start", "finish"});
}

TEST_CASE("finish while a reader is behind: it gets the rest, then finish, once",
          "[streaming][stream_log]")
{
    stream_log log("m1", "c1");
    stream_log::cursor c;
    reading r;
    log.append_text("one ");
    drain(log, c, r, 1 << 14, 2); // start + "one "
    log.append_text("two ");
    log.append_text("three");
    events::finish_info stopped;
    stopped.status = "stopped";
    stopped.finish_reason = "stop";
    log.close(events::finish("m1", stopped));
    // Appends after the end are ignored: the final event is the last item.
    log.append_event(events::tool_input_start("m1", "x", "calculator", 0));
    drain(log, c, r, 1 << 14);
    CHECK(r.text == "one two three");
    CHECK(r.log == std::vector<std::string>{"start", "T0:one ", "T4:two three", "finish"});
    CHECK(c.done);
    CHECK(log.closed());
}

TEST_CASE("two cursors on one log are independent", "[streaming][stream_log]")
{
    stream_log log("m1", "c1");
    auto a = log.cursor_at(0);
    log.append_text("abcdef");
    auto b = log.cursor_at(3);
    REQUIRE(a);
    REQUIRE(b);
    reading ra, rb;
    drain(log, *a, ra, 2);
    drain(log, *b, rb, 1 << 14);
    CHECK(ra.text == "abcdef");
    CHECK(rb.text == "def");
    CHECK(rb.log[1] == "T3:def");
    log.append_text("g");
    log.close(events::finish("m1", complete()));
    drain(log, *a, ra, 2);
    drain(log, *b, rb, 2);
    CHECK(ra.text == "abcdefg");
    CHECK(rb.text == "defg");
    CHECK(ra.log.back() == "finish");
    CHECK(rb.log.back() == "finish");
}

TEST_CASE("a waiting reader is woken once per wait, never missed", "[streaming][stream_log]")
{
    stream_log log("m1", "c1");
    auto listener = std::make_shared<counting_listener>();
    std::weak_ptr<log_listener> w = listener;
    stream_log::cursor c;
    std::string text;
    frame event;
    std::uint64_t offset = 0;
    REQUIRE(log.next(c, text, offset, event, 64, w) == stream_log::item::event); // start
    REQUIRE(log.next(c, text, offset, event, 64, w) == stream_log::item::none);
    REQUIRE(log.next(c, text, offset, event, 64, w) == stream_log::item::none); // registered once
    log.append_text("a");
    log.append_text("b"); // no second wake: the reader has not waited again
    CHECK(listener->woken == 1);
    REQUIRE(log.next(c, text, offset, event, 64, w) == stream_log::item::text);
    CHECK(text == "ab");
    REQUIRE(log.next(c, text, offset, event, 64, w) == stream_log::item::none);
    log.close(events::finish("m1", complete()));
    CHECK(listener->woken == 2);

    // Appender and reader on two threads: the reader only pulls when woken
    // and must end with everything.
    stream_log big("m2", "c2");
    struct waker : log_listener
    {
        std::atomic<int> pending{0};
        void on_log_ready() override { pending.fetch_add(1); }
    };
    auto wk = std::make_shared<waker>();
    std::weak_ptr<log_listener> ww = wk;
    std::string expected;
    std::thread appender(
        [&]
        {
            for (int i = 0; i < 20000; ++i)
                big.append_text(tokens[static_cast<std::size_t>(i) % tokens.size()]);
            big.close(events::finish("m2", complete()));
        });
    for (int i = 0; i < 20000; ++i)
        expected += tokens[static_cast<std::size_t>(i) % tokens.size()];
    stream_log::cursor rc;
    std::string got;
    bool finished = false;
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!finished && std::chrono::steady_clock::now() < deadline)
    {
        auto const item = big.next(rc, text, offset, event, 4096, ww);
        if (item == stream_log::item::text)
            got += text;
        else if (item == stream_log::item::event)
            finished = rc.done;
        else
        {
            // Nothing now: the next append must wake us (lost wake-ups hang here).
            while (wk->pending.load() == 0 && std::chrono::steady_clock::now() < deadline)
                std::this_thread::yield();
            wk->pending.store(0);
        }
    }
    appender.join();
    CHECK(finished);
    CHECK(got == expected);
}

namespace
{

/// A reasoning model's step: it thinks, answers, calls a tool, thinks
/// again and ends the answer (docs/design.md §9). @p each runs after every append.
template <class Each> void reasoning_reply(stream_log& log, Each const& each)
{
    log.append_reasoning_event(events::reasoning_start("m1"));
    each();
    for (auto const* piece : {"Let", " me 😀", " think"})
    {
        log.append_reasoning(piece);
        each();
    }
    log.append_reasoning_event(events::reasoning_end("m1"));
    log.append_text("Hel");
    each();
    log.append_text("lo");
    each();
    log.append_event(events::tool_input_start("m1", "call-1", "calculator", log.u16_length()));
    each();
    log.append_reasoning_event(events::reasoning_start("m1"));
    log.append_reasoning(" again");
    each();
    log.append_reasoning_event(events::reasoning_end("m1"));
    log.append_text(" world");
    each();
    log.close(events::finish("m1", complete()));
    each();
}

} // namespace

TEST_CASE("reasoning: fast and slow readers get it in place, at its own offsets",
          "[streaming][stream_log][reasoning]")
{
    stream_log log("m1", "c1");
    stream_log::cursor fast, slow;
    reading f, s;
    reasoning_reply(log, [&] { drain(log, fast, f, 1 << 14); });
    drain(log, slow, s, 1 << 14);
    for (auto const* r : {&f, &s})
    {
        CHECK(r->contiguous);
        CHECK(r->reasoning == "Let me 😀 think again");
        CHECK(r->text == "Hello world");
    }
    // "😀" is two UTF-16 units (7-8), so " think" starts at 9, not 8.
    CHECK(f.log == std::vector<std::string>{"start", "reasoning-start", "R0:Let", "R3: me 😀",
                                            "R9: think", "reasoning-end", "T0:Hel", "T3:lo",
                                            "tool-input-start", "reasoning-start", "R15: again",
                                            "reasoning-end", "T5: world", "finish"});
    // The slow reader gets each run between two events as one item.
    CHECK(s.log == std::vector<std::string>{"start", "reasoning-start", "R0:Let me 😀 think",
                                            "reasoning-end", "T0:Hello", "tool-input-start",
                                            "reasoning-start", "R15: again", "reasoning-end",
                                            "T5: world", "finish"});
}

TEST_CASE("reasoning: a resuming reader gets the reasoning it lacks, then the text past its offset",
          "[streaming][stream_log][reasoning]")
{
    stream_log log("m1", "c1");
    reasoning_reply(log, [] {});
    SECTION("text offset only: all of the reasoning again, text from 3")
    {
        auto c = log.cursor_at(3);
        REQUIRE(c);
        reading r;
        drain(log, *c, r, 1 << 14);
        CHECK(r.log == std::vector<std::string>{"start", "reasoning-start", "R0:Let me 😀 think",
                                                "reasoning-end", "T3:lo", "tool-input-start",
                                                "reasoning-start", "R15: again", "reasoning-end",
                                                "T5: world", "finish"});
    }
    SECTION("inside the surrogate pair: rounds down, the first start is not repeated")
    {
        auto c = log.cursor_at(5, 8); // 8 is inside "😀" (units 7-8)
        REQUIRE(c);
        reading r;
        drain(log, *c, r, 1 << 14);
        CHECK(r.log == std::vector<std::string>{"start", "R7:😀 think", "reasoning-end",
                                                "tool-input-start", "reasoning-start", "R15: again",
                                                "reasoning-end", "T5: world", "finish"});
    }
    SECTION("everything already held: only the end")
    {
        auto c = log.cursor_at(log.u16_length(), log.reasoning_u16_length());
        REQUIRE(c);
        reading r;
        drain(log, *c, r, 1 << 14);
        CHECK(r.log == std::vector<std::string>{"start", "reasoning-end", "finish"});
    }
    SECTION("past the end of the reasoning: refused")
    {
        CHECK_FALSE(log.cursor_at(0, log.reasoning_u16_length() + 1));
    }
}

TEST_CASE("a released log hands a reader behind the ranges to read from the row, then the rest",
          "[streaming][stream_log][release]")
{
    stream_log log("m1", "c1");
    stream_log::cursor early;
    reading before;
    reasoning_reply(log, [] {});
    auto const text = std::string("Hello world");
    auto const reasoning = std::string("Let me 😀 think again");
    // A reader that got only the start and part of the reasoning.
    drain(log, early, before, 3, 3); // start, reasoning-start, "Let"
    REQUIRE(before.log == std::vector<std::string>{"start", "reasoning-start", "R0:Let"});
    log.release_text();
    CHECK(log.released());
    CHECK_FALSE(log.cursor_at(0)); // a new reader replays from the database instead

    // What the reader gets now: ranges to fetch, in the order the log would
    // have handed the text out, and the events between them.
    std::vector<std::string> got;
    std::string fetched_text, fetched_reasoning;
    std::string scratch;
    frame event;
    std::uint64_t offset = 0;
    for (int guard = 0; guard < 100; ++guard)
    {
        auto const item = log.next(early, scratch, offset, event, 1 << 14);
        if (item == stream_log::item::none)
            break;
        if (item == stream_log::item::stored)
        {
            auto const& r = early.stored;
            auto const& source = r.reasoning ? reasoning : text;
            // A short read of whole code points, as a bounded fetch makes it.
            auto piece = source.substr(r.byte, std::min<std::size_t>(r.end - r.byte, 5));
            piece.resize(core::complete_utf8_prefix(piece) ? core::complete_utf8_prefix(piece)
                                                           : piece.size());
            got.push_back((r.reasoning ? "R" : "T") + std::to_string(r.u16) + ":" + piece);
            (r.reasoning ? fetched_reasoning : fetched_text) += piece;
            stream_log::advance_stored(early, piece);
            continue;
        }
        REQUIRE(item == stream_log::item::event);
        got.push_back(std::string(json::parse(*event.data).at("type").as_string()));
    }
    CHECK(early.done);
    CHECK("Let" + fetched_reasoning == reasoning);
    CHECK(fetched_text == text);
    // Pieces of at most 5 bytes: "😀 " is 5 bytes and 3 UTF-16 units.
    CHECK(got == std::vector<std::string>{"R3: me ", "R7:😀 ", "R10:think", "reasoning-end",
                                          "T0:Hello", "tool-input-start", "reasoning-start",
                                          "R15: agai", "R20:n", "reasoning-end", "T5: worl",
                                          "T10:d", "finish"});
}

TEST_CASE("release waits for the end: an open log keeps its text",
          "[streaming][stream_log][release]")
{
    stream_log log("m1", "c1");
    log.append_text("abc");
    log.release_text(); // not closed: ignored
    CHECK_FALSE(log.released());
    stream_log::cursor c;
    reading r;
    drain(log, c, r, 1 << 14);
    CHECK(r.text == "abc");
}
