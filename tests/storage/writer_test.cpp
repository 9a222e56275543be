#include "chatstream/storage/writer.hpp"

#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>

using namespace chatstream;
using namespace chatstream::storage;

TEST_CASE("writer group-commits and reports each job", "[storage][writer]")
{
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    writer w(path);
    std::atomic<int> ok{0}, failed{0};
    for (int i = 0; i < 500; ++i)
        w.submit([i](database& db) { users::ensure(db, "user-" + std::to_string(i)); },
                 [&](std::error_code ec) { (ec ? failed : ok)++; });
    // A failing job rolls back only itself.
    w.submit([](database&) { throw storage_error(errc::conflict, "nope"); },
             [&](std::error_code ec) {
                 CHECK(ec == errc::conflict);
                 failed++;
             });
    w.stop();
    CHECK(ok == 500);
    CHECK(failed == 1);
    CHECK(w.stats().commits.load() < 500); // batched, not one commit per job

    read_pool pool(path, 2);
    auto n = pool.run_sync([](database& db) {
        auto& q = db.prepare("SELECT count(*) FROM users");
        q.executeStep();
        auto c = q.getColumn(0).getInt();
        q.reset();
        return c;
    });
    CHECK(n == 500);
}

TEST_CASE("an acknowledged write survives kill -9", "[storage][writer][durability]")
{
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
    {
        close(fds[0]);
        writer w(path);
        for (int i = 0;; ++i)
        {
            w.submit_future([i](database& db) { users::ensure(db, "u" + std::to_string(i)); }).get();
            // Acknowledge only after the future says durable.
            if (write(fds[1], &i, sizeof i) != sizeof i) _exit(1);
        }
    }
    close(fds[1]);
    int last = -1, v;
    while (last < 200 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    while (read(fds[0], &v, sizeof v) == sizeof v) last = v; // acks already in the pipe
    close(fds[0]);

    database db(path, open_mode::read_write);
    for (int i = 0; i <= last; ++i)
        REQUIRE(users::find_by_external_id(db, "u" + std::to_string(i)));
}

TEST_CASE("writer refuses jobs after stop and surfaces SQLITE_FULL", "[storage][writer]")
{
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    writer_options opts;
    {
        database probe(path, open_mode::read_write);
        auto& q = probe.prepare("PRAGMA page_count");
        q.executeStep();
        opts.db.max_page_count = q.getColumn(0).getInt64() + 2;
        q.reset();
    }
    writer w(path, opts);
    std::string big(64 * 1024, 'x');
    auto f = w.submit_future([&](database& db) { users::ensure(db, "big", big); });
    CHECK_THROWS_AS(f.get(), storage_error);
    w.stop();
    std::error_code got;
    w.submit([](database&) {}, [&](std::error_code ec) { got = ec; });
    CHECK(got == errc::internal);
}
