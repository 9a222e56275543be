#include "chatstream/streaming/outbound_queue.hpp"

#include "chatstream/streaming/protocol.hpp"

#include <catch2/catch.hpp>

using namespace chatstream::streaming;

namespace
{
frame text(std::string s)
{
    return frame{std::make_shared<std::string const>(std::move(s))};
}
} // namespace

TEST_CASE("outbound queue is FIFO and bounded by count", "[streaming][queue]")
{
    outbound_queue q({3, 1 << 20, 1 << 16});
    CHECK(q.push(text("a")));
    CHECK(q.push(text("b")));
    CHECK(q.push(text("c")));
    CHECK_FALSE(q.push(text("d"))); // full: refused, queue unchanged
    CHECK(q.size() == 3);
    CHECK(*q.pop().data == "a");
    CHECK(*q.pop().data == "b");
    CHECK(q.push(text("d")));
    CHECK(*q.pop().data == "c");
    CHECK(*q.pop().data == "d");
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
}

TEST_CASE("outbound queue is bounded by bytes", "[streaming][queue]")
{
    outbound_queue q({100, 10, 1 << 16});
    CHECK(q.push(text("12345")));
    CHECK(q.push(text("6789")));
    CHECK(q.bytes() == 9);
    CHECK_FALSE(q.push(text("ab")));
    CHECK(q.push(text("a")));
    CHECK(q.bytes() == 10);
    q.pop();
    CHECK(q.bytes() == 5);
}

TEST_CASE("backed-up deltas of one message merge, keeping the first offset", "[streaming][queue]")
{
    outbound_queue q;
    q.push(events::text_delta("m1", 0, "Hello"));
    q.push(events::text_delta("m1", 5, " wörld"));
    q.push(events::text_delta("m1", 11, " 🚀\"q\""));
    auto f = q.pop();
    CHECK(*f.data ==
          R"({"type":"text-delta","messageId":"m1","offset":0,"delta":"Hello wörld 🚀\"q\""})");
    CHECK(f.u16_begin == 0);
    CHECK(f.u16_end == 11 + 6);
    CHECK(q.empty());
    CHECK(q.merged() == 2);
}

TEST_CASE("merging never crosses kinds, messages or gaps", "[streaming][queue]")
{
    outbound_queue q;
    q.push(events::text_delta("m1", 0, "a"));
    q.push(events::tool_input_start("m1", "t", "calculator", 1));
    q.push(events::text_delta("m1", 1, "b"));
    q.push(events::text_delta("m2", 1, "c"));  // other message
    q.push(events::text_delta("m1", 5, "d"));  // not contiguous (second subscription)
    q.push(events::text_delta("m10", 6, "e")); // prefix of another id must not match
    CHECK(*q.pop().data == events::text_delta("m1", 0, "a").data->c_str());
    CHECK(q.pop().data->find("tool-input-start") != std::string::npos);
    CHECK(*q.pop().data == *events::text_delta("m1", 1, "b").data);
    CHECK(*q.pop().data == *events::text_delta("m2", 1, "c").data);
    CHECK(*q.pop().data == *events::text_delta("m1", 5, "d").data);
    CHECK(*q.pop().data == *events::text_delta("m10", 6, "e").data);
    CHECK(q.merged() == 0);
}

TEST_CASE("a merged delta is bounded in size", "[streaming][queue]")
{
    outbound_queue q({1000, 1 << 20, 100});
    for (int i = 0; i < 20; ++i)
        q.push(events::text_delta("m", static_cast<std::uint64_t>(i) * 10, "0123456789"));
    std::size_t frames = 0;
    std::string all;
    while (!q.empty())
    {
        auto f = q.pop();
        ++frames;
        CHECK(f.size() <= 100 + 60);
        auto const pos = f.data->find("\"delta\":\"") + 9;
        all += f.data->substr(pos, f.data->size() - 2 - pos);
    }
    CHECK(frames > 1);
    CHECK(frames < 20);
    CHECK(all.size() == 200);
}
