// Writer throughput: committed single-row upserts per second through the
// group-committing writer, next to a baseline of one transaction per row on
// the same machine in the same run. Prints one JSON line per result.
//
//   writer_bench [--rows N] [--producers P] [--dir DIR]
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"

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

namespace {

struct fixture_ids
{
    std::string user, conversation, message;
};

fixture_ids setup(std::string const& path)
{
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
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
    for (int i = 1; i + 1 < argc; i += 2)
    {
        if (!std::strcmp(argv[i], "--rows")) rows = std::stol(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--producers")) producers = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    }
    auto const path = dir + "/chatstream-writer-bench.db";

    // Baseline: one IMMEDIATE transaction per upsert on one connection.
    {
        auto ids = setup(path);
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
        std::printf("{\"bench\":\"writer\",\"mode\":\"txn_per_row_baseline\",\"rows\":%ld,\"seconds\":%.3f,"
                    "\"upserts_per_sec\":%.0f}\n", n, s, n / s);
    }

    // The writer: P producer threads submit single-row upserts concurrently.
    {
        auto ids = setup(path);
        writer w(path);
        std::atomic<long> done{0}, failed{0};
        std::latch all_done(rows);
        auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p)
            threads.emplace_back([&, p] {
                for (long i = p; i < rows; i += producers)
                    w.submit([r = row_for(ids, i)](database& db) { tool_calls::upsert(db, r); },
                             [&](std::error_code ec) {
                                 (ec ? failed : done)++;
                                 all_done.count_down();
                             });
            });
        for (auto& t : threads) t.join();
        all_done.wait();
        auto s = seconds_since(t0);
        auto commits = w.stats().commits.load();
        std::printf("{\"bench\":\"writer\",\"mode\":\"group_commit\",\"rows\":%ld,\"producers\":%d,"
                    "\"seconds\":%.3f,\"upserts_per_sec\":%.0f,\"commits\":%llu,\"rows_per_commit\":%.1f,"
                    "\"failed\":%ld}\n",
                    rows, producers, s, rows / s, static_cast<unsigned long long>(commits),
                    commits ? double(rows) / commits : 0.0, failed.load());
        w.stop();
    }
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    return 0;
}
