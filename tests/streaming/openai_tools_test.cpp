// What the openai provider needs around it: tool descriptions, async tools
// (`lookup` on the read pool, never blocking an I/O thread) and pricing.
#include "chatstream/streaming/pricing.hpp"
#include "chatstream/streaming/tools.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "support/temp_db.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <future>
#include <thread>

using namespace chatstream;
using namespace chatstream::streaming;
using Catch::Matchers::Contains;
namespace net = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace
{

struct store
{
    test::temp_dir dir;
    std::string path = test::migrated_db(dir);
    std::string alice;
    std::string bob;
    std::string alice_conversation;
    std::string running_message; // a message still generating: never searched

    store()
    {
        storage::database db(path, storage::open_mode::read_write);
        alice = storage::users::ensure(db, "alice");
        bob = storage::users::ensure(db, "bob");
        alice_conversation = conversation(db, alice, "Trip planning");
        auto const bobs = conversation(db, bob, "Bob's secrets");
        std::int64_t t = 1000;
        message(db, alice_conversation, alice, "user",
                "Where should I go in Kyoto? 京都 temples please", t++);
        message(db, alice_conversation, alice, "assistant",
                std::string(300, '-') + " Try the KYOTO temple Kinkaku-ji " + std::string(300, '-'),
                t++);
        message(db, alice_conversation, alice, "user", "100% sure about kyoto_2?", t++);
        running_message =
            message(db, alice_conversation, alice, "assistant", "kyoto draft", t++, "generating");
        message(db, bobs, bob, "user", "my kyoto password is hunter2", t++);
    }

    static std::string conversation(storage::database& db, std::string const& user,
                                    std::string title)
    {
        storage::conversation_row c;
        c.id = core::new_id();
        c.user_id = user;
        c.title = std::move(title);
        c.created_at = c.updated_at = core::now_ms();
        storage::conversations::insert(db, c);
        return c.id;
    }

    static std::string message(storage::database& db, std::string const& conv,
                               std::string const& user, std::string role, std::string content,
                               std::int64_t at, std::string status = storage::status::complete)
    {
        storage::message_row m;
        m.id = core::new_id();
        m.conversation_id = conv;
        m.user_id = user;
        m.role = std::move(role);
        m.content = std::move(content);
        m.status = std::move(status);
        m.created_at = m.updated_at = at;
        storage::messages::insert(db, m);
        return m.id;
    }
};

} // namespace

TEST_CASE("tools: descriptions for function calling", "[streaming][tools][openai]")
{
    auto r = tool_registry::with_builtins();
    auto defs = r.definitions();
    REQUIRE(defs.size() == 2);
    CHECK(defs[0].name == "calculator");
    CHECK(defs[1].name == "datetime");
    for (auto const& d : defs)
    {
        CHECK_FALSE(d.description.empty());
        CHECK(json::parse(d.parameters_json).at("type") == "object");
    }
    // A description without a tool is not offered.
    r.describe({"ghost", "not there", "{}"});
    CHECK(r.definitions().size() == 2);
}

TEST_CASE("tools: run_async completes sync tools on the executor, never inline",
          "[streaming][tools]")
{
    auto const r = tool_registry::with_builtins();
    net::io_context ioc;
    std::optional<tool_result> got;
    r.run_async("calculator", R"({"expression":"6*7"})", {}, ioc.get_executor(),
                [&](tool_result t) { got = t; });
    CHECK_FALSE(got); // posted, not called inline
    ioc.run();
    REQUIRE(got);
    CHECK(got->success);
    CHECK(json::parse(got->json).at("result") == 42);

    got.reset();
    ioc.restart();
    r.run_async("nope", "{}", {}, ioc.get_executor(), [&](tool_result t) { got = t; });
    ioc.run();
    REQUIRE(got);
    CHECK_FALSE(got->success);
}

TEST_CASE("lookup: searches only the caller's finished messages, off the I/O thread",
          "[streaming][tools][openai]")
{
    store s;
    storage::read_pool reads(s.path, 1);
    auto r = tool_registry::with_builtins();
    add_lookup_tool(r, reads);
    CHECK(r.has("lookup"));
    CHECK(r.definitions().size() == 3);

    // The sync path refuses it rather than blocking.
    auto sync = r.run("lookup", R"({"query":"kyoto"})");
    CHECK_FALSE(sync.success);
    CHECK_THAT(sync.error, Contains("run_async"));

    // One I/O thread, joined even when a REQUIRE throws.
    struct io_thread
    {
        net::io_context ioc;
        net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
        std::thread thread{[this] { ioc.run(); }};
        ~io_thread()
        {
            work.reset();
            thread.join();
        }
        std::thread::id get_id() const { return thread.get_id(); }
    } io;
    // The pool's threads post completions to io's context: stop them before
    // the context is destroyed (a post may still be returning; found by TSan).
    struct stop_pool_first
    {
        storage::read_pool& pool;
        ~stop_pool_first() { pool.stop(); }
    } stop_first{reads};
    auto& ioc = io.ioc;
    tool_context ctx{s.alice, s.alice_conversation, "current"};

    auto call = [&](std::string args, tool_context c)
    {
        std::promise<std::pair<tool_result, std::thread::id>> p;
        r.run_async("lookup", std::move(args), c, ioc.get_executor(),
                    [&](tool_result t) {
                        p.set_value({std::move(t), std::this_thread::get_id()});
                    });
        auto f = p.get_future();
        REQUIRE(f.wait_for(5s) == std::future_status::ready);
        return f.get();
    };

    SECTION("matches, newest first, scoped to alice")
    {
        auto [res, thread] = call(R"({"query":"KYOTO"})", ctx);
        CHECK(thread == io.get_id()); // completion comes back to the executor
        REQUIRE(res.success);
        auto v = json::parse(res.json).as_object();
        auto const& m = v.at("matches").as_array();
        REQUIRE(m.size() == 3); // not bob's, not the generating draft
        CHECK(m[0].at("snippet") == "100% sure about kyoto_2?");
        CHECK(m[0].at("conversationTitle") == "Trip planning");
        CHECK(m[0].at("role") == "user");
        auto const long_snippet = std::string(m[1].at("snippet").as_string());
        CHECK_THAT(long_snippet, Contains("KYOTO temple"));
        CHECK(long_snippet.starts_with("…"));
        CHECK(long_snippet.ends_with("…"));
        CHECK(long_snippet.size() < 300);
        CHECK(m[2].at("createdAt") == 1000);
        for (auto const& x : m)
            CHECK_THAT(std::string(x.at("snippet").as_string()), !Contains("hunter2"));
    }
    SECTION("LIKE wildcards in the query are literal; limit is honoured")
    {
        auto [pct, t1] = call(R"({"query":"100%"})", ctx);
        CHECK(json::parse(pct.json).at("matches").as_array().size() == 1);
        auto [under, t2] = call(R"({"query":"o_2"})", ctx);
        CHECK(json::parse(under.json).at("matches").as_array().size() == 1);
        auto [limited, t3] = call(R"({"query":"kyoto","limit":1})", ctx);
        CHECK(json::parse(limited.json).at("matches").as_array().size() == 1);
    }
    SECTION("bob sees only his own")
    {
        auto [res, t] = call(R"({"query":"kyoto"})", {s.bob, "", ""});
        auto const v = json::parse(res.json);
        auto const& m = v.at("matches").as_array();
        REQUIRE(m.size() == 1);
        CHECK_THAT(std::string(m[0].at("snippet").as_string()), Contains("hunter2"));
    }
    SECTION("bad arguments fail without touching the pool")
    {
        for (auto args :
             {R"({})", R"({"query":"  "})", R"({"query":5})", R"({"query":"x","limit":"a"})", "[]"})
        {
            auto [res, t] = call(args, ctx);
            INFO(args);
            CHECK_FALSE(res.success);
            CHECK(json::parse(res.json).at("success") == false);
        }
    }
    SECTION("a busy pool never stalls the I/O thread")
    {
        // Occupy the only reader; the lookup queues behind it while the I/O
        // thread keeps running timers.
        std::promise<void> release;
        auto released = release.get_future().share();
        reads.post([released](storage::database&) { released.wait(); });
        std::atomic<bool> finished{false};
        r.run_async("lookup", R"({"query":"kyoto"})", ctx, ioc.get_executor(),
                    [&](tool_result) { finished = true; });
        std::atomic<int> ticks{0};
        net::steady_timer timer(ioc);
        std::function<void()> tick = [&]
        {
            timer.expires_after(5ms);
            timer.async_wait(
                [&](boost::system::error_code ec)
                {
                    if (ec)
                        return;
                    if (++ticks < 10)
                        tick();
                });
        };
        net::post(ioc, tick);
        for (int i = 0; i < 400 && ticks < 10; ++i)
            std::this_thread::sleep_for(5ms);
        CHECK(ticks >= 10);
        CHECK_FALSE(finished);
        release.set_value();
        for (int i = 0; i < 400 && !finished; ++i)
            std::this_thread::sleep_for(5ms);
        CHECK(finished);
    }
}

TEST_CASE("pricing: built-in table, families, unknown models, overrides",
          "[streaming][openai][pricing]")
{
    step_usage const u{1'000'000, 500'000};
    CHECK(cost_usd("gpt-4o", u) == Approx(2.50 + 5.00));
    CHECK(cost_usd("gpt-4o-mini", u) == Approx(0.15 + 0.30));
    CHECK(cost_usd("gpt-4o-2024-08-06", u) == Approx(7.50));      // dated snapshot -> family
    CHECK(cost_usd("gpt-4o-mini-2024-07-18", u) == Approx(0.45)); // longest prefix wins
    CHECK(cost_usd("gpt-4.1-nano", {2000, 1000}) == Approx(0.0002 + 0.0004));
    CHECK_FALSE(cost_usd("llama-3.1-8b-instruct", u).has_value()); // unknown: NULL, not 0
    CHECK_FALSE(cost_usd("gpt-4ox", u).has_value());               // prefix must end at '-'

    auto t = price_table::builtin();
    t.merge_json(
        R"({"llama-3.1-8b-instruct":{"input":0,"output":0},"gpt-4o":{"input":1,"output":2}})");
    CHECK(t.cost_usd("llama-3.1-8b-instruct", u) == Approx(0.0));
    CHECK(t.cost_usd("gpt-4o", u) == Approx(2.0));
    CHECK_THROWS_AS(t.merge_json("[1]"), std::runtime_error);
    CHECK_THROWS_AS(t.merge_json(R"({"m":{"input":"1","output":1}})"), std::runtime_error);
    CHECK_THROWS_AS(t.merge_json(R"({"m":{"input":-1,"output":1}})"), std::runtime_error);

    test::temp_dir dir;
    auto const file = dir.file("prices.json");
    std::ofstream(file) << R"({"my-local-model":{"input":0.1,"output":0.2}})";
    auto f = price_table::from_json_file(file);
    CHECK(f.cost_usd("my-local-model", u) == Approx(0.2));
    CHECK(f.cost_usd("gpt-4o", u) == Approx(7.5)); // built-ins kept
    CHECK_THROWS_AS(price_table::from_json_file(dir.file("missing.json")), std::runtime_error);
}

TEST_CASE("pricing: reasoning tokens at the reasoning rate, the output rate by default",
          "[streaming][openai][pricing]")
{
    // 1M in, 500k out of which 200k reasoning.
    step_usage const u{1'000'000, 500'000, 200'000};
    CHECK(cost_usd("o4-mini", u) == Approx(1.10 + 0.5 * 4.40)); // no reasoning rate: output rate
    auto t = price_table::builtin();
    t.merge_json(R"({"thinker":{"input":1,"output":2,"reasoning":10}})");
    CHECK(t.cost_usd("thinker", u) == Approx(1.0 + 0.3 * 2 + 0.2 * 10));
    // A server that counts reasoning apart from the output: both are charged.
    CHECK(t.cost_usd("thinker", {0, 100'000, 300'000}) == Approx(0.3 * 10));
    CHECK_THROWS_AS(t.merge_json(R"({"m":{"input":1,"output":1,"reasoning":"x"}})"),
                    std::runtime_error);
}
