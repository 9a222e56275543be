// The generation engine without sockets: a real writer and read pool on a
// temp database, an io_context with two threads, recording subscribers.
#include "chatstream/streaming/generation.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/sources.hpp"
#include "chatstream/storage/writer.hpp"
#include "support/temp_db.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

using namespace chatstream;
using namespace chatstream::streaming;
namespace json = boost::json;

namespace
{

class recorder : public subscriber
{
public:
    void deliver(frame f) override
    {
        std::lock_guard lock(mutex_);
        events_.push_back(json::parse(*f.data).as_object());
        cv_.notify_all();
    }

    /// Waits for an event of @p type; returns every event so far.
    std::vector<json::object> wait_for(std::string const& type, std::size_t nth = 1)
    {
        std::unique_lock lock(mutex_);
        bool ok = cv_.wait_for(lock, std::chrono::seconds(10),
                               [&]
                               {
                                   std::size_t n = 0;
                                   for (auto const& e : events_)
                                       n += e.at("type").as_string() == type;
                                   return n >= nth;
                               });
        REQUIRE(ok);
        return events_;
    }

    std::size_t count(std::string const& type)
    {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (auto const& e : events_)
            n += e.at("type").as_string() == type;
        return n;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<json::object> events_;
};

std::string text_of(std::vector<json::object> const& events)
{
    std::string out;
    for (auto const& e : events)
        if (e.at("type").as_string() == "text-delta")
            out += e.at("delta").as_string();
    return out;
}

struct engine
{
    test::temp_dir dir;
    std::string path = test::migrated_db(dir);
    storage::writer writer{path};
    storage::read_pool reads{path, 2};
    std::unique_ptr<provider> model = make_scripted_provider({});
    tool_registry tools = tool_registry::with_builtins();
    server_metrics metrics;
    boost::asio::io_context ioc;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
        ioc.get_executor()};
    stream_hub hub{
        hub_context{ioc, writer, reads, *model, tools, metrics, std::chrono::milliseconds(10)}};
    std::vector<std::thread> threads;
    std::string user_id = [&]
    {
        std::string id;
        writer.run_sync([&](storage::database& db) { id = storage::users::ensure(db, "alice"); });
        return id;
    }();

    engine()
    {
        for (int i = 0; i < 2; ++i)
            threads.emplace_back([this] { ioc.run(); });
    }
    ~engine()
    {
        work.reset();
        ioc.stop();
        for (auto& t : threads)
            t.join();
        reads.stop();
        writer.stop();
    }

    std::optional<storage::message_row> message(std::string const& id)
    {
        return reads.run_sync([&](storage::database& db)
                              { return storage::messages::get(db, user_id, id); });
    }
};

generate_request gen(std::string content)
{
    generate_request r;
    r.id = "\"g\"";
    r.content = std::move(content);
    return r;
}

} // namespace

TEST_CASE("a generation acks, streams and commits before finish", "[streaming][generation]")
{
    engine e;
    auto r = std::make_shared<recorder>();
    e.hub.generate(e.user_id, gen("/tokens 50"), r);
    auto events = r->wait_for("finish");
    CHECK(events.at(0).at("type").as_string() == "ack");
    CHECK(events.at(1).at("type").as_string() == "start");
    auto const id = std::string(events.at(0).at("messageId").as_string());
    auto m = e.message(id);
    REQUIRE(m);
    CHECK(m->status == "complete");
    CHECK(m->content == text_of(events));
    CHECK(m->output_tokens == 50);
    CHECK(m->tokens_per_second.has_value());
    CHECK(e.hub.active() == 0); // freed before finish is sent
    CHECK(e.metrics.generations_total.load() == 1);
}

TEST_CASE("a generation survives its subscriber and flushes partial content",
          "[streaming][generation]")
{
    engine e;
    std::string id;
    {
        auto r = std::make_shared<recorder>();
        e.hub.generate(e.user_id, gen("/tokens 60 /delay 5"), r);
        auto events = r->wait_for("text-delta", 3);
        id = std::string(events.at(0).at("messageId").as_string());
    } // the only subscriber is gone
    // partial_content lags by about --flush-ms while generating.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto live = e.message(id);
    REQUIRE(live);
    CHECK(live->status == "generating");
    REQUIRE(live->partial_content);
    CHECK_FALSE(live->partial_content->empty());
    CHECK(live->first_token_at.has_value());

    // A late subscriber from offset 0 gets the whole text, then the end.
    auto late = std::make_shared<recorder>();
    e.hub.subscribe(e.user_id, subscribe_request{{}, id, 0}, late);
    auto events = late->wait_for("finish");
    auto m = e.message(id);
    CHECK(m->status == "complete");
    CHECK(text_of(events) == m->content);
    CHECK(e.metrics.flushes.load() > 0);
}

TEST_CASE("cancel and shutdown end in committed stopped states", "[streaming][generation]")
{
    engine e;
    auto r = std::make_shared<recorder>();
    e.hub.generate(e.user_id, gen("/tokens 100000 /delay 5"), r);
    auto events = r->wait_for("text-delta", 2);
    auto const id = std::string(events.at(0).at("messageId").as_string());
    auto other = std::make_shared<recorder>();
    e.hub.cancel("someone-else", cancel_request{{}, id}, other);
    CHECK(other->wait_for("error").back().at("code").as_string() == "not_found");
    e.hub.cancel(e.user_id, cancel_request{{}, id}, r);
    auto done = r->wait_for("finish");
    CHECK(done.back().at("status").as_string() == "stopped");
    CHECK(e.message(id)->status == "stopped");
    CHECK(e.message(id)->content == text_of(done));

    auto r2 = std::make_shared<recorder>();
    e.hub.generate(e.user_id, gen("/tokens 100000 /delay 5"), r2);
    r2->wait_for("text-delta");
    std::promise<void> drained;
    e.hub.shutdown([&] { drained.set_value(); });
    REQUIRE(drained.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    auto end = r2->wait_for("finish");
    CHECK(end.back().at("status").as_string() == "stopped");
    auto refused = std::make_shared<recorder>();
    e.hub.generate(e.user_id, gen("hi"), refused);
    CHECK(refused->wait_for("error").back().at("message").as_string() == "server is shutting down");
}

namespace
{

// Checks, as each `source` event arrives, that its row is already committed.
class source_checker : public recorder
{
public:
    explicit source_checker(engine& e) : e_(e) {}
    void deliver(frame f) override
    {
        auto const o = json::parse(*f.data).as_object();
        if (o.at("type").as_string() == "source")
        {
            auto const rows = e_.reads.run_sync(
                [&](storage::database& db) {
                    return storage::sources::rows_for_message(
                        db, std::string(o.at("messageId").as_string()));
                });
            auto const position = o.at("position").as_int64();
            bool found = false;
            for (auto const& r : rows)
                found = found || r.position == position;
            committed_before_event.push_back(found);
        }
        recorder::deliver(std::move(f));
    }
    std::vector<bool> committed_before_event;

private:
    engine& e_;
};

std::vector<json::object> of_type(std::vector<json::object> const& events, std::string const& type)
{
    std::vector<json::object> out;
    for (auto const& e : events)
        if (e.at("type").as_string() == type)
            out.push_back(e);
    return out;
}

} // namespace

TEST_CASE("sources: numbered, deduplicated by normalized URL, committed before their event",
          "[streaming][generation][sources]")
{
    engine e;
    auto r = std::make_shared<source_checker>(e);
    e.hub.generate(e.user_id,
                   gen("/tokens 40\n/source https://example.com/a#top First title\n"
                       "/source https://EXAMPLE.com/a?utm_source=x Second title\n"
                       "/source ftp://example.com/not-a-source\n"
                       "/source https://other.org/b\n"),
                   r);
    auto const events = r->wait_for("finish");
    auto const sources = of_type(events, "source");
    REQUIRE(sources.size() == 2);
    CHECK(sources[0].at("position").as_int64() == 1);
    CHECK(sources[0].at("url").as_string() == "https://example.com/a#top");
    CHECK(sources[0].at("title").as_string() == "First title");
    CHECK(sources[1].at("position").as_int64() == 2);
    CHECK(sources[1].at("url").as_string() == "https://other.org/b");
    CHECK_FALSE(sources[1].contains("title"));
    CHECK(r->committed_before_event == std::vector<bool>{true, true});
    // Cited along the answer: text comes first (each event then waits for
    // its commit, so with no token delay it may trail the text).
    CHECK(events.at(2).at("type").as_string() == "text-delta");

    auto const id = std::string(events.at(0).at("messageId").as_string());
    auto const rows = e.reads.run_sync([&](storage::database& db)
                                       { return storage::sources::rows_for_message(db, id); });
    REQUIRE(rows.size() == 2);
    for (auto const& row : rows)
    {
        CHECK_FALSE(row.is_partial); // finish made them final
        CHECK(row.provider == "upstream");
    }

    // A stored replay carries them too, in position order, before finish.
    auto late = std::make_shared<recorder>();
    e.hub.subscribe(e.user_id, subscribe_request{{}, id, 0}, late);
    auto const replayed = late->wait_for("finish");
    auto const again = of_type(replayed, "source");
    REQUIRE(again.size() == 2);
    CHECK(again[0].at("position").as_int64() == 1);
    CHECK(again[1].at("url").as_string() == "https://other.org/b");
    CHECK(text_of(replayed) == text_of(events));
}

TEST_CASE("sources: a stop mid-stream leaves none partial", "[streaming][generation][sources]")
{
    engine e;
    auto r = std::make_shared<recorder>();
    // Sources due after tokens 2, 4 and 6 of 8; the stop comes after the first.
    e.hub.generate(e.user_id,
                   gen("/tokens 8 /delay 200\n/source https://example.com/1\n"
                       "/source https://example.com/2\n/source https://example.com/3\n"),
                   r);
    auto events = r->wait_for("source");
    auto const id = std::string(events.at(0).at("messageId").as_string());
    auto const count = [&](char const* sql)
    {
        return e.reads.run_sync(
            [&](storage::database& db)
            {
                auto& q = db.prepare(sql);
                q.bind(1, id);
                q.executeStep();
                auto n = q.getColumn(0).getInt64();
                q.reset();
                return n;
            });
    };
    CHECK(count("SELECT count(*) FROM sources WHERE message_id = ? AND is_partial = 1") == 1);
    e.hub.cancel(e.user_id, cancel_request{{}, id}, r);
    auto const done = r->wait_for("finish");
    CHECK(done.back().at("status").as_string() == "stopped");
    CHECK(count("SELECT count(*) FROM sources WHERE message_id = ?") >= 1);
    CHECK(count("SELECT count(*) FROM sources WHERE message_id = ? AND is_partial = 1") == 0);
}
