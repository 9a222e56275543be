// Writer throughput: committed single-row upserts per second through the
// group-committing writer, next to a baseline of one transaction per row on
// the same machine in the same run. Prints one JSON line per result.
//
//   writer_bench [--rows N] [--producers P] [--dir DIR] [--db URL] [--mode MODE]
//
// --mode runs only one of round_trip, txn_per_row_baseline, group_commit,
// group_commit_flush (e.g. to count one mode's syscalls under strace -c).
//
// --db postgres://… runs against PostgreSQL, in a schema of its own
// (chatstream_writer_bench, dropped and made again for every mode), and
// also reports the round trip of a trivial prepared statement, which is
// what every statement the writer sends costs at least.
#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <latch>
#include <string>
#include <thread>
#include <vector>

using namespace chatstream;
using namespace chatstream::storage;

namespace
{

struct fixture_ids
{
    std::string user, conversation, message;
};

constexpr char const* pg_schema = "chatstream_writer_bench";

// Where the bench database lives: a file in @p dir, or a schema of @p url
// made the connection's search_path.
std::string bench_location(std::string const& dir, std::string const& url)
{
    if (url.empty())
        return dir + "/chatstream-writer-bench.db";
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
           pg_schema;
}

void drop(std::string const& location, std::string const& url)
{
    if (!url.empty())
    {
        database admin(url, open_mode::read_write);
        admin.exec(std::string("DROP SCHEMA IF EXISTS ") + pg_schema + " CASCADE");
        return;
    }
    std::filesystem::remove(location);
    std::filesystem::remove(location + "-wal");
    std::filesystem::remove(location + "-shm");
}

fixture_ids setup(std::string const& path, std::string const& url)
{
    drop(path, url);
    if (!url.empty())
    {
        database admin(url, open_mode::read_write);
        admin.exec(std::string("CREATE SCHEMA ") + pg_schema);
    }
    database db(path, open_mode::read_write);
    migrations::apply_schema(db);
    fixture_ids ids;
    ids.user = users::ensure(db, "bench");
    conversation_row c;
    c.id = ids.conversation = core::new_id();
    c.user_id = ids.user;
    c.created_at = c.updated_at = core::now_ms();
    conversations::insert(db, c);
    message_row m;
    m.id = ids.message = core::new_id();
    m.conversation_id = c.id;
    m.user_id = ids.user;
    m.role = "assistant";
    m.status = status::generating;
    m.created_at = m.updated_at = core::now_ms();
    messages::insert(db, m);
    return ids;
}

tool_call_row row_for(fixture_ids const& ids, long i)
{
    tool_call_row t;
    t.message_id = ids.message;
    t.conversation_id = ids.conversation;
    t.user_id = ids.user;
    t.tool_call_id = "call_" + std::to_string(i % 5000); // half inserts, half updates
    t.tool_name = "calculator";
    t.args = R"({"expression":"6*7"})";
    t.text_position = i;
    t.timestamp = i;
    return t;
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv)
{
    long rows = 100000;
    int producers = 8;
    std::string dir = std::filesystem::temp_directory_path().string();
    std::string url;
    std::string only;
    for (int i = 1; i + 1 < argc; i += 2)
    {
        if (!std::strcmp(argv[i], "--rows"))
            rows = std::stol(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--producers"))
            producers = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--db"))
            url = argv[i + 1];
        else if (!std::strcmp(argv[i], "--mode"))
            only = argv[i + 1];
    }
    if (!url.empty() && parse_location(url).dialect != dialect::postgres)
    {
        std::fprintf(stderr, "--db takes a postgres:// URL (use --dir for SQLite)\n");
        return 2;
    }
    auto const path = bench_location(dir, url);
    char const* const backend = url.empty() ? "sqlite" : "postgres";
    auto const wanted = [&](char const* mode) { return only.empty() || only == mode; };

    // PostgreSQL: the client-server round trip, the floor under every statement.
    if (!url.empty() && wanted("round_trip"))
    {
        database db(url, open_mode::read_write);
        auto& q = db.prepare("SELECT 1");
        for (int i = 0; i < 1000; ++i)
            (q.executeStep(), q.reset()); // warm up
        int const n = 20000;
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i)
        {
            q.executeStep();
            q.reset();
        }
        auto s = seconds_since(t0);
        std::printf("{\"bench\":\"writer\",\"backend\":\"postgres\",\"mode\":\"round_trip\","
                    "\"statements\":%d,"
                    "\"seconds\":%.3f,\"us_per_statement\":%.1f}\n",
                    n, s, s * 1e6 / n);
    }

    // Baseline: one IMMEDIATE transaction per upsert on one connection.
    if (wanted("txn_per_row_baseline"))
    {
        auto ids = setup(path, url);
        database db(path, open_mode::read_write);
        long const n = std::min<long>(rows, 20000);
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < n; ++i)
        {
            transaction tx(db);
            tool_calls::upsert(db, row_for(ids, i));
            tx.commit();
        }
        auto s = seconds_since(t0);
        std::printf("{\"bench\":\"writer\",\"backend\":\"%s\",\"mode\":\"txn_per_row_baseline\","
                    "\"rows\":%ld,"
                    "\"seconds\":%.3f,\"upserts_per_sec\":%.0f}\n",
                    backend, n, s, n / s);
    }

    // The writer: P producer threads submit single-row jobs concurrently;
    // job_for(i) makes job i.
    auto run_writer = [&](char const* mode, auto const& job_for)
    {
        writer w(path);
        std::atomic<long> done{0}, failed{0};
        std::latch all_done(rows);
        auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back(
                [&, p]
                {
                    for (long i = p; i < rows; i += producers)
                        w.submit(job_for(i),
                                 [&](std::error_code ec)
                                 {
                                     (ec ? failed : done)++;
                                     all_done.count_down();
                                 });
                });
        for (auto& t : threads)
            t.join();
        all_done.wait();
        auto s = seconds_since(t0);
        auto commits = w.stats().commits.load();
        std::printf("{\"bench\":\"writer\",\"backend\":\"%s\",\"mode\":\"%s\",\"rows\":%ld,"
                    "\"producers\":%d,\"seconds\":%.3f,\"upserts_per_sec\":%.0f,\"commits\":%llu,"
                    "\"rows_per_commit\":%.1f,\"us_per_job\":%.1f,\"failed\":%ld}\n",
                    backend, mode, rows, producers, s, rows / s,
                    static_cast<unsigned long long>(commits),
                    commits ? double(rows) / commits : 0.0, s * 1e6 / rows, failed.load());
        w.stop();
    };

    // Tool-call upserts (half inserts, half updates; the statement plus the
    // legacy-columns probe per job).
    if (wanted("group_commit"))
    {
        auto ids = setup(path, url);
        run_writer("group_commit",
                   [&](long i) -> writer::job
                   { return [r = row_for(ids, i)](database& db) { tool_calls::upsert(db, r); }; });
    }

    // The streaming hot path: one partial-content flush (a single UPDATE by
    // primary key) per job, spread over 1000 generating messages.
    if (wanted("group_commit_flush"))
    {
        auto ids = setup(path, url);
        std::vector<std::string> streams;
        {
            database db(path, open_mode::read_write);
            transaction tx(db);
            for (int i = 0; i < 1000; ++i)
            {
                message_row m;
                m.id = core::new_id();
                m.conversation_id = ids.conversation;
                m.user_id = ids.user;
                m.role = "assistant";
                m.status = status::generating;
                m.created_at = m.updated_at = core::now_ms();
                messages::insert(db, m);
                streams.push_back(m.id);
            }
            tx.commit();
        }
        run_writer("group_commit_flush",
                   [&](long i) -> writer::job
                   {
                       return [id = streams[static_cast<std::size_t>(i) % streams.size()],
                               i](database& db) {
                           messages::flush_partial(db, id, "partial text " + std::to_string(i),
                                                   std::nullopt, i);
                       };
                   });
    }
    drop(path, url);
    return 0;
}
