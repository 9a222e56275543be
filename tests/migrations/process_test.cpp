// End-to-end tests of `chatstream migrate` as a real child process: exit
// codes, status JSON, and kill -9 in the middle of the backfill and at each
// step of the offline bulk load.
#include "chatstream/migrations/data_migration.hpp"

#include "helpers.hpp"
#include "legacy_gen.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace chatstream;

namespace
{

std::int64_t processed(std::string const& path)
{
    try
    {
        storage::database db(path, storage::open_mode::read_only);
        if (!db.has_table("migrations"))
            return 0;
        return std::stoll(
            test::query_one(db, "SELECT processed FROM migrations WHERE id = '001'").value_or("0"));
    }
    catch (std::exception const&)
    {
        return 0; // schema being applied right now
    }
}

} // namespace

TEST_CASE("kill -9 during the backfill, resume: same rows as an uninterrupted run",
          "[migrations][process]")
{
    test::temp_dir dir;
    bench::legacy_gen_options o;
    o.messages = 30000;
    o.seed = 7;
    // The generator is deterministic: two runs give the same database, on
    // either backend (a file copy would do for SQLite only).
    auto const killed = dir.db("killed.db");
    auto const clean = dir.db("clean.db");
    bench::generate_legacy_db(killed, o);
    bench::generate_legacy_db(clean, o);

    auto const log = dir.file("out.txt");
    auto r = test::run_chatstream({"migrate", "--db", clean, "up", "--batch-size", "100"}, log);
    REQUIRE(r.exit_code == 0);

    // Kill three times at growing checkpoints; a batch of 100 with a 1 ms pause
    // means the kill lands in or between transactions.
    std::int64_t last = 0;
    int kills = 0;
    for (int round = 0; round < 3; ++round)
    {
        auto const pid = test::spawn_chatstream(
            {"migrate", "--db", killed, "up", "--batch-size", "100", "--pause-ms", "1"}, log);
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        std::int64_t seen = 0;
        while (std::chrono::steady_clock::now() < deadline)
        {
            seen = processed(killed);
            if (seen >= last + 3000)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        kill(pid, SIGKILL);
        auto const code = test::wait_exit(pid);
        if (code == 128 + SIGKILL)
            ++kills;
        CHECK(processed(killed) >= seen);
        last = processed(killed);
        if (last >= o.messages)
            break;
    }
    CHECK(kills >= 1);
    CHECK(last < o.messages); // the kills really happened mid-backfill

    {
        storage::database db(killed, storage::open_mode::read_only);
        CHECK(test::query_one(db, "SELECT status FROM migrations WHERE id = '001'") ==
              std::optional<std::string>("running"));
    }
    r = test::run_chatstream({"migrate", "--db", killed, "up", "--batch-size", "100"}, log);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("resumed from checkpoint"));
    // verify moves both to phase dual-read, so the counters compare too.
    for (auto const& path : {killed, clean})
        CHECK(test::run_chatstream({"migrate", "--db", path, "verify"}, log).exit_code == 0);
    CHECK(test::dump_migrated(killed) == test::dump_migrated(clean));
    if (!test::testing_postgres())
    {
        // The kills landed in offline batches (rollback journal, indexes
        // deferred): the resumed file is back to WAL with every index.
        CHECK_THAT(r.output, Catch::Contains("offline bulk load"));
        storage::database db(killed, storage::open_mode::read_only);
        CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
        CHECK(test::query_one(
                  db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                      "AND tbl_name IN ('attachments', 'tool_calls')") ==
              std::optional<std::string>("6"));
    }
}

TEST_CASE("migrate CLI: exit codes, status --json, verify, rollback, cleanup",
          "[migrations][process]")
{
    test::temp_dir dir;
    bench::legacy_gen_options o;
    o.messages = 500;
    auto const db = dir.db("cli.db");
    bench::generate_legacy_db(db, o);
    auto const log = dir.file("out.txt");
    auto run = [&](std::vector<std::string> args)
    {
        std::vector<std::string> full{"migrate", "--db", db};
        full.insert(full.end(), args.begin(), args.end());
        return test::run_chatstream(full, log);
    };

    CHECK(run({"bogus"}).exit_code == 2);
    CHECK(run({"up", "--batch-size", "0"}).exit_code == 2);
    CHECK(run({"rollback", "999"}).exit_code == 2);
    CHECK(test::run_chatstream({"migrate", "--db", dir.file("missing.db"), "status"}, log)
              .exit_code == 1);

    // Cleanup before the backfill: refused, columns kept.
    CHECK(run({"up", "--batch-size", "1000000"}).exit_code == 0);
    CHECK(run({"rollback", "001"}).exit_code == 0);
    auto r = run({"cleanup"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains("refused"));

    r = run({"up"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("started"));
    r = run({"status", "--json"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("\"processed\":500"));
    CHECK_THAT(r.output, Catch::Contains("\"phase\":\"dual-write\""));
    r = run({"status"});
    CHECK_THAT(r.output, Catch::Contains("phase=dual-write status=completed processed=500/500"));

    r = run({"verify"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("0 mismatch(es)"));
    {
        storage::database d(db, storage::open_mode::read_write);
        d.exec("UPDATE tool_calls SET text_position = 99999 WHERE id = (SELECT min(id) FROM "
               "tool_calls)");
    }
    r = run({"verify"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains("MISMATCH"));
    CHECK_THAT(r.output, Catch::Contains("text_position"));
    CHECK(run({"cleanup"}).exit_code == 1);

    // Rollback, then up redoes it exactly.
    CHECK(run({"rollback", "001"}).exit_code == 0);
    CHECK(run({"up"}).exit_code == 0);
    CHECK(run({"verify"}).exit_code == 0);
    r = run({"cleanup"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("500 messages rewritten"));
    CHECK(run({"rollback", "001"}).exit_code == 1);
    r = run({"status", "--json"});
    CHECK_THAT(r.output, Catch::Contains("\"legacy_columns\":false"));
    CHECK_THAT(r.output, Catch::Contains("\"id\":\"002\""));
}

namespace
{

// The secondary indexes of the target tables (what an offline load defers).
std::set<std::string> secondary_indexes(storage::database& db)
{
    std::set<std::string> out;
    auto& q = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                         "AND tbl_name IN ('attachments', 'tool_calls')");
    while (q.executeStep())
        out.insert(q.getColumn(0).getString());
    q.reset();
    return out;
}

std::set<std::string> stashed_indexes(storage::database& db)
{
    std::set<std::string> out;
    if (!db.has_table("migration_deferred_indexes"))
        return out;
    auto& q = db.prepare("SELECT name FROM migration_deferred_indexes");
    while (q.executeStep())
        out.insert(q.getColumn(0).getString());
    q.reset();
    return out;
}

bool log_contains(std::string const& path, std::string const& needle)
{
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str().find(needle) != std::string::npos;
}

} // namespace

// The offline path's own moments (SQLite only: PostgreSQL has no offline
// path). Each kill lands exactly at a point of detail::offline_load through
// its test hook; the next opener must find every deferred index either in
// the schema or in the stash, and `migrate up` must finish the job.
TEST_CASE("offline load: kill -9 at the journal switch, the index drop, the index build and the "
          "switch back",
          "[migrations][process][sqlite]")
{
    test::temp_dir dir;
    auto const o = bench::heavy_profile(20000, 5);
    auto const legacy = dir.file("legacy.db"), clean = dir.file("clean.db");
    bench::generate_legacy_db(legacy, o);
    std::filesystem::copy_file(legacy, clean);
    auto const log = dir.file("out.txt");
    auto r = test::run_chatstream({"migrate", "--db", clean, "up"}, log);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("offline bulk load"));
    REQUIRE(test::run_chatstream({"migrate", "--db", clean, "verify"}, log).exit_code == 0);
    std::set<std::string> all;
    {
        storage::database db(clean, storage::open_mode::read_write);
        all = secondary_indexes(db);
        CHECK(stashed_indexes(db).empty());
        CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
    }
    REQUIRE(all.size() == 6);

    for (auto const* point : {"journal", "drop", "index_build", "wal"})
    {
        INFO("killed at " << point);
        auto const killed = dir.file(std::string("killed-") + point + ".db");
        auto const killed_log = dir.file(std::string("killed-") + point + ".txt");
        std::filesystem::copy_file(legacy, killed);
        setenv("CHATSTREAM_TEST_PAUSE_AT", point, 1);
        // Ten batches, one transaction (offline batches share it): a kill
        // before its commit redoes them all.
        auto const pid = test::spawn_chatstream(
            {"migrate", "--db", killed, "up", "--batch-size", "2000"}, killed_log);
        unsetenv("CHATSTREAM_TEST_PAUSE_AT");
        bool paused = false;
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!paused && std::chrono::steady_clock::now() < deadline)
        {
            paused = log_contains(killed_log, std::string("test pause at ") + point);
            if (!paused)
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        kill(pid, SIGKILL);
        CHECK(test::wait_exit(pid) == 128 + SIGKILL);
        REQUIRE(paused);
        {
            // What a server or the next `migrate up` finds (its open rolls a
            // hot journal back): no index lost, none half there.
            storage::database db(killed, storage::open_mode::read_write);
            CHECK(test::query_one(db, "PRAGMA integrity_check") ==
                  std::optional<std::string>("ok"));
            auto have = secondary_indexes(db);
            auto const stashed = stashed_indexes(db);
            for (auto const& name : stashed)
                CHECK(have.count(name) == 0);
            have.insert(stashed.begin(), stashed.end());
            CHECK(have == all);
            bool const after_commit = std::string(point) == "wal";
            CHECK(test::query_one(db, "SELECT status FROM migrations WHERE id = '001'") ==
                  std::optional<std::string>(after_commit ? "completed" : "running"));
            CHECK(test::query_one(db, "SELECT processed FROM migrations WHERE id = '001'") ==
                  std::optional<std::string>(after_commit ? "20000" : "0"));
        }
        if (std::string(point) == "index_build")
        {
            // A plain `serve` on what the kill left (every index stashed)
            // builds them before it listens.
            auto const serve_log = dir.file("serve-after-kill.txt");
            auto const server = test::spawn_chatstream(
                {"serve", "--db", killed, "--port", "0", "--threads", "1"}, serve_log);
            bool listening = false;
            auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (!listening && std::chrono::steady_clock::now() < until)
            {
                listening = log_contains(serve_log, "listening on");
                if (!listening)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            kill(server, SIGTERM);
            test::wait_exit(server);
            REQUIRE(listening);
            CHECK(log_contains(serve_log, "building 6 deferred indexes"));
            storage::database db(killed, storage::open_mode::read_only);
            CHECK(secondary_indexes(db) == all);
            CHECK(stashed_indexes(db).empty());
        }
        r = test::run_chatstream({"migrate", "--db", killed, "up"}, log);
        CHECK(r.exit_code == 0);
        CHECK(test::run_chatstream({"migrate", "--db", killed, "verify"}, log).exit_code == 0);
        {
            storage::database db(killed, storage::open_mode::read_only);
            CHECK(secondary_indexes(db) == all);
            CHECK(stashed_indexes(db).empty());
            CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
        }
        CHECK(test::dump_migrated(killed) == test::dump_migrated(clean));
    }
}

namespace
{

// Every message row as text, in id order (what 002 must carry over intact).
std::string dump_messages(std::string const& path)
{
    storage::database db(path, storage::open_mode::read_only);
    std::string out;
    auto& q = db.prepare("SELECT * FROM messages ORDER BY id");
    while (q.executeStep())
    {
        for (int i = 0; i < q.getColumnCount(); ++i)
        {
            auto c = q.getColumn(i);
            out += c.isNull() ? std::string("NULL") : c.getString();
            out += '|';
        }
        out += '\n';
    }
    q.reset();
    return out;
}

} // namespace

// 002's rebuild on the rollback journal (SQLite, no other connection): a kill
// inside the transaction (after the copy, before the commit) leaves a hot
// journal that the next opener rolls back to the legacy table, whole; a kill
// after the commit leaves the rebuilt table in rollback mode, which the next
// opener switches back to WAL. Either way a second `cleanup` ends where an
// uninterrupted one does.
TEST_CASE("cleanup 002: kill -9 during the rebuild on the rollback journal, then resume",
          "[migrations][process][sqlite][cleanup]")
{
    test::temp_dir dir;
    auto const o = bench::heavy_profile(20000, 9);
    auto const migrated = dir.file("migrated.db"), clean = dir.file("clean.db");
    bench::generate_legacy_db(migrated, o);
    auto const log = dir.file("out.txt");
    REQUIRE(test::run_chatstream({"migrate", "--db", migrated, "up"}, log).exit_code == 0);
    std::filesystem::copy_file(migrated, clean);
    auto const legacy_messages = dump_messages(migrated);
    auto r = test::run_chatstream({"migrate", "--db", clean, "cleanup"}, log);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("migration=002 offline: truncate journal"));
    auto const want_messages = dump_messages(clean);
    CHECK(want_messages != legacy_messages); // the columns are gone
    {
        storage::database db(clean, storage::open_mode::read_only);
        CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
        CHECK_FALSE(db.has_column("messages", "tool_calls"));
    }

    for (auto const* point : {"cleanup_copy", "cleanup_commit", "cleanup_wal"})
    {
        INFO("killed at " << point);
        auto const killed = dir.file(std::string("killed-") + point + ".db");
        auto const killed_log = dir.file(std::string("killed-") + point + ".txt");
        std::filesystem::copy_file(migrated, killed);
        setenv("CHATSTREAM_TEST_PAUSE_AT", point, 1);
        auto const pid = test::spawn_chatstream({"migrate", "--db", killed, "cleanup"}, killed_log);
        unsetenv("CHATSTREAM_TEST_PAUSE_AT");
        bool paused = false;
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!paused && std::chrono::steady_clock::now() < deadline)
        {
            paused = log_contains(killed_log, std::string("test pause at ") + point);
            if (!paused)
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        kill(pid, SIGKILL);
        CHECK(test::wait_exit(pid) == 128 + SIGKILL);
        REQUIRE(paused);
        bool const committed = std::string(point) == "cleanup_wal";
        {
            storage::database db(killed, storage::open_mode::read_write);
            CHECK(test::query_one(db, "PRAGMA integrity_check") ==
                  std::optional<std::string>("ok"));
            CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
            CHECK(db.has_column("messages", "tool_calls") == !committed);
            CHECK_FALSE(db.has_table("messages_rebuilt"));
            CHECK(test::query_one(db, "SELECT status FROM migrations WHERE id = '002'") ==
                  std::optional<std::string>(committed ? "completed" : "running"));
        }
        CHECK(dump_messages(killed) == (committed ? want_messages : legacy_messages));
        r = test::run_chatstream({"migrate", "--db", killed, "cleanup"}, log);
        CHECK(r.exit_code == 0);
        CHECK(dump_messages(killed) == want_messages);
        CHECK(test::dump_migrated(killed) == test::dump_migrated(clean));
        {
            storage::database db(killed, storage::open_mode::read_only);
            CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
            CHECK(test::query_one(db, "SELECT count(*) FROM sqlite_master WHERE tbl_name = "
                                      "'messages' AND type = 'index' AND sql IS NOT NULL") ==
                  std::optional<std::string>("2"));
            CHECK(test::query_one(db, "SELECT count(*) FROM pragma_foreign_key_list('messages') "
                                      "WHERE on_delete = 'CASCADE'") ==
                  std::optional<std::string>("2"));
        }
    }
}
