#include "chatstream/migrations/runner.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/legacy.hpp"
#include "chatstream/storage/repositories.hpp"

#include "helpers.hpp"
#include "legacy_gen.hpp"
#include "legacy_oracle.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <thread>

using namespace chatstream;
using namespace chatstream::migrations;

namespace
{

struct expected_message
{
    std::string id;
    std::string user_id;
    std::vector<test::oracle_call> tool_calls;
};

// What every read must return for each message with legacy tool calls,
// computed before anything is migrated, by the SQL oracle (not by
// legacy::convert, which the backfill and the read fallback share).
std::vector<expected_message> expectations(storage::database& db, std::string const& scratch)
{
    auto const oracle = test::legacy_oracle(db, scratch);
    std::map<std::string, std::string> users;
    auto& q = db.prepare("SELECT id, user_id FROM messages");
    while (q.executeStep())
        users[q.getColumn(0).getString()] = q.getColumn(1).getString();
    std::vector<expected_message> out;
    for (auto const& [id, m] : oracle)
        if (m.accepted && !m.tool_calls.empty())
            out.push_back({id, users.at(id), m.tool_calls});
    return out;
}

} // namespace

TEST_CASE("online backfill on the writer: reads stay correct and streaming writes interleave",
          "[migrations][online]")
{
    test::temp_dir dir;
    bench::legacy_gen_options o;
    o.messages = 12000;
    o.malformed_per_mille = 0;
    auto const path = dir.db("online.db");
    bench::generate_legacy_db(path, o);
    std::vector<expected_message> expected;
    {
        storage::database db(path, storage::open_mode::read_write);
        apply_schema(db);
        expected = expectations(db, dir.file("oracle.db"));
    }
    REQUIRE(expected.size() > 100);

    storage::writer writer(path);
    std::atomic<int> batches{0};
    online_options opts;
    opts.batch_size = 200;
    opts.pause = std::chrono::milliseconds(2);
    opts.on_progress = [&](progress const&) { ++batches; };
    online_backfill backfill(writer, opts);

    // A "streaming" producer: new conversation + message + tool calls through
    // the repositories (dual-write), sharing the writer with the backfill.
    std::atomic<bool> stop_streaming{false};
    std::atomic<int> streamed{0};
    std::thread streamer(
        [&]
        {
            while (!stop_streaming)
            {
                writer.run_sync(
                    [&](storage::database& db)
                    {
                        auto const user = storage::users::ensure(db, "live-user");
                        storage::conversation_row c;
                        c.id = core::new_id();
                        c.user_id = user;
                        c.created_at = c.updated_at = core::now_ms();
                        storage::conversations::insert(db, c);
                        storage::message_row m;
                        m.id = core::new_id();
                        m.conversation_id = c.id;
                        m.user_id = user;
                        m.role = "assistant";
                        m.status = storage::status::generating;
                        m.created_at = m.updated_at = core::now_ms();
                        storage::messages::insert(db, m);
                        storage::tool_call_row t;
                        t.message_id = m.id;
                        t.conversation_id = c.id;
                        t.user_id = user;
                        t.tool_call_id = "live";
                        t.tool_name = "calculator";
                        t.args = R"({"expression":"1+1"})";
                        t.text_position = 0;
                        t.timestamp = core::now_ms();
                        storage::tool_calls::upsert(db, t);
                        storage::messages::finish(
                            db, m.id,
                            {.status = "complete", .content = "2", .completed_at = core::now_ms()});
                    });
                ++streamed;
                std::this_thread::sleep_for(std::chrono::milliseconds(3));
            }
        });

    backfill.start();
    // Reader: keeps checking messages while the backfill moves through them.
    std::size_t reads = 0, reads_before_done = 0;
    {
        storage::database reader(path, storage::open_mode::read_only);
        std::size_t i = 0;
        while (!backfill.finished() || i < expected.size())
        {
            auto const& e = expected[i % expected.size()];
            auto got = storage::tool_calls::list_for_message(reader, e.user_id, e.id, true);
            REQUIRE(got.size() == e.tool_calls.size());
            for (std::size_t k = 0; k < got.size(); ++k)
            {
                auto const& want = e.tool_calls[k];
                CHECK(got[k].id == want.id);
                CHECK(test::json_equal(got[k].arguments, want.arguments));
                CHECK(got[k].result.has_value() == want.result.has_value());
                if (got[k].result && want.result)
                    CHECK(test::json_equal(*got[k].result, *want.result));
                CHECK(got[k].text_position == want.text_position);
                CHECK(got[k].is_partial == want.is_partial);
            }
            ++reads;
            if (!backfill.finished())
                ++reads_before_done;
            i += 7;
        }
    }
    backfill.wait();
    stop_streaming = true;
    streamer.join();
    CHECK(backfill.error().empty());
    CHECK(backfill.processed() >= o.messages);
    CHECK(batches > 10);
    CHECK(reads_before_done > 0);
    CHECK(streamed > 0);

    writer.run_sync(
        [&](storage::database& db)
        {
            auto s = read_migration(db, normalize_id).value();
            CHECK(s.status == "completed");
            CHECK(s.phase == "dual-write");
            auto report = verify(db); // the live messages' arrays were dual-written
            CHECK(report.ok());
            for (auto const& m : report.mismatches)
                UNSCOPED_INFO(m.message_id << ": " << m.detail);
        });
    writer.stop();
}

TEST_CASE("online backfill stops at a checkpoint and resumes", "[migrations][online]")
{
    test::temp_dir dir;
    bench::legacy_gen_options o;
    o.messages = 5000;
    auto const path = dir.db("online.db");
    bench::generate_legacy_db(path, o);
    {
        storage::database db(path, storage::open_mode::read_write);
        apply_schema(db);
    }
    storage::writer writer(path);
    {
        online_options opts;
        opts.batch_size = 100;
        opts.pause = std::chrono::milliseconds(5);
        online_backfill backfill(writer, opts);
        backfill.start();
        while (backfill.processed() < 500)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        backfill.stop();
        CHECK(backfill.finished());
        CHECK(backfill.error().empty());
    }
    writer.run_sync(
        [](storage::database& db)
        {
            auto s = read_migration(db, normalize_id).value();
            CHECK(s.status == "pending");
            CHECK(s.processed >= 500);
            CHECK(s.processed < 5000);
        });
    std::string done_error = "not called";
    online_options opts;
    opts.on_done = [&](std::string const& e) { done_error = e; };
    online_backfill again(writer, opts);
    again.start();
    again.wait();
    INFO(done_error);
    CHECK(done_error.empty());
    writer.run_sync(
        [](storage::database& db)
        {
            CHECK(read_migration(db, normalize_id)->status == "completed");
            CHECK(read_migration(db, normalize_id)->processed == 5000);
            CHECK(verify(db).ok());
        });
    writer.stop();
}

TEST_CASE("online backfill reports a failure without throwing across threads",
          "[migrations][online]")
{
    test::temp_dir dir;
    bench::legacy_gen_options o;
    o.messages = 100;
    auto const path = dir.db("online.db");
    bench::generate_legacy_db(path, o); // schema never applied: begin() must fail
    storage::writer writer(path);
    online_backfill backfill(writer);
    backfill.start();
    backfill.wait();
    CHECK_THAT(backfill.error(), Catch::Contains("schema is not applied"));
    writer.stop();
}
