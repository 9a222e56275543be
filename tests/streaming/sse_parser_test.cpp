#include "chatstream/streaming/sse_parser.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

using namespace chatstream::streaming;

namespace
{

std::vector<sse_event> drain(sse_parser& p)
{
    std::vector<sse_event> out;
    while (auto e = p.next())
        out.push_back(std::move(*e));
    return out;
}

std::vector<sse_event> parse_whole(std::string_view s)
{
    sse_parser p;
    p.feed(s);
    return drain(p);
}

// Feeds @p s cut at @p cuts (sorted byte offsets), draining after each piece.
std::vector<sse_event> parse_cut(std::string_view s, std::vector<std::size_t> const& cuts)
{
    sse_parser p;
    std::vector<sse_event> out;
    std::size_t at = 0;
    for (auto c : cuts)
    {
        p.feed(s.substr(at, c - at));
        for (auto& e : drain(p))
            out.push_back(std::move(e));
        at = c;
    }
    p.feed(s.substr(at));
    for (auto& e : drain(p))
        out.push_back(std::move(e));
    return out;
}

bool same(std::vector<sse_event> const& a, std::vector<sse_event> const& b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].type != b[i].type || a[i].data != b[i].data || a[i].id != b[i].id)
            return false;
    return true;
}

// A stream with every feature: BOM, comments, CRLF/CR/LF, multi-line data,
// types, ids, fields without a colon, UTF-8 in data.
constexpr std::string_view mixed = "\xEF\xBB\xBF: hello\r\n"
                                   "data: {\"content\":\"caf\xC3\xA9 \xF0\x9F\x9A\x80\"}\r\n\r\n"
                                   "event: ping\rdata\r\r"
                                   "id: 7\ndata:a\ndata:  b\n\n"
                                   ":keep-alive\n\n"
                                   "retry: 100\nfoo: bar\ndata: [DONE]\n\n";

} // namespace

TEST_CASE("sse: events, fields, comments and line ends", "[streaming][sse]")
{
    sse_parser p;
    p.feed(mixed);
    auto ev = drain(p);
    REQUIRE(ev.size() == 4);
    CHECK(ev[0].type == "message");
    CHECK(ev[0].data == "{\"content\":\"caf\xC3\xA9 \xF0\x9F\x9A\x80\"}");
    CHECK(ev[1].type == "ping");
    CHECK(ev[1].data.empty() == true); // "data" without colon: an empty data line
    CHECK(ev[2].data == "a\n b");      // one leading space stripped, not two
    CHECK(ev[2].id == "7");
    CHECK(ev[3].data == "[DONE]");
    CHECK(ev[3].id == "7"); // the last event id persists
    CHECK(p.comments() == 2);
    CHECK_FALSE(p.has_partial_event());
}

TEST_CASE("sse: an event without data is not dispatched", "[streaming][sse]")
{
    auto ev = parse_whole("event: x\n\nid: 1\n\n: c\n\ndata: y\n\n");
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].type == "message"); // the type of the dropped event was reset
    CHECK(ev[0].data == "y");
}

TEST_CASE("sse: a stream cut at every position parses the same", "[streaming][sse]")
{
    auto const whole = parse_whole(mixed);
    REQUIRE(whole.size() == 4);
    for (std::size_t i = 0; i <= mixed.size(); ++i)
    {
        INFO("cut at " << i);
        CHECK(same(parse_cut(mixed, {i}), whole));
    }
    for (std::size_t i = 0; i <= mixed.size(); i += 3)
        for (std::size_t j = i; j <= mixed.size(); j += 5)
            CHECK(same(parse_cut(mixed, {i, j}), whole));
    // One byte at a time.
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < mixed.size(); ++i)
        every.push_back(i);
    CHECK(same(parse_cut(mixed, every), whole));
}

TEST_CASE("sse: CRLF split between two pieces is one line end", "[streaming][sse]")
{
    sse_parser p;
    p.feed("data: a\r");
    CHECK(drain(p).empty());
    p.feed("\n\r");
    auto ev = drain(p);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].data == "a");
    p.feed("\ndata: b\n\n"); // the LF after that CR is its line end, not a blank line
    ev = drain(p);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].data == "b");
}

TEST_CASE("sse: partial events and the end of a stream", "[streaming][sse]")
{
    sse_parser p;
    CHECK_FALSE(p.has_partial_event());
    p.feed("data: x\n");
    CHECK(drain(p).empty());
    CHECK(p.has_partial_event()); // no blank line yet: discarded at the end
    p.feed("\ndata: y");
    CHECK(drain(p).size() == 1);
    CHECK(p.has_partial_event());
    SECTION("a BOM prefix alone waits for more bytes")
    {
        sse_parser q;
        q.feed("\xEF\xBB");
        CHECK(drain(q).empty());
        q.feed("\xBF"
               "data: z\n\n");
        auto ev = drain(q);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].data == "z");
    }
}

TEST_CASE("sse: size bounds fail the parser instead of growing", "[streaming][sse]")
{
    SECTION("one long line")
    {
        sse_parser p(64);
        p.feed("data: " + std::string(100, 'x'));
        CHECK(drain(p).empty());
        CHECK(p.failed());
        p.feed("\n\n");
        CHECK(drain(p).empty());
    }
    SECTION("many data lines")
    {
        sse_parser p(64);
        for (int i = 0; i < 20; ++i)
            p.feed("data: 0123456789\n");
        CHECK(drain(p).empty());
        CHECK(p.failed());
    }
    SECTION("under the bound")
    {
        sse_parser p(64);
        p.feed("data: " + std::string(50, 'x') + "\n\n");
        CHECK(drain(p).size() == 1);
        CHECK_FALSE(p.failed());
    }
}

TEST_CASE("sse: a long line fed byte by byte is scanned once", "[streaming][sse]")
{
    // 1 MiB in single bytes: linear work is ~10^6 steps (well under a
    // second, sanitizers included); rescanning the pending line on every
    // feed is ~5*10^11 and takes minutes, so a generous bound tells them apart.
    sse_parser p;
    std::string const line = "data: " + std::string(1 << 20, 'a') + "\n\n";
    std::vector<sse_event> events;
    auto const started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < line.size(); ++i)
    {
        p.feed(std::string_view(&line[i], 1));
        while (auto e = p.next())
            events.push_back(std::move(*e));
        // Fails within the bound, not at ctest's timeout.
        if (i % 4096 == 0 && std::chrono::steady_clock::now() - started > std::chrono::seconds(10))
            FAIL("fed " << i << " of " << line.size() << " bytes in 10 s: rescanning");
    }
    REQUIRE(events.size() == 1);
    CHECK(events[0].data == std::string(1 << 20, 'a'));
}
