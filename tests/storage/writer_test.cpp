#include "chatstream/storage/writer.hpp"

#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <future>
#include <latch>

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
             [&](std::error_code ec)
             {
                 CHECK(ec == errc::conflict);
                 failed++;
             });
    w.stop();
    CHECK(ok == 500);
    CHECK(failed == 1);
    CHECK(w.stats().commits.load() < 500); // batched, not one commit per job

    read_pool pool(path, 2);
    auto n = pool.run_sync(
        [](database& db)
        {
            auto& q = db.prepare("SELECT count(*) FROM users");
            q.executeStep();
            auto c = q.getColumn(0).getInt();
            q.reset();
            return c;
        });
    CHECK(n == 500);
}

TEST_CASE("a job failing in SQL rolls back only its own writes, in a shared transaction",
          "[storage][writer]")
{
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    writer w(path);
    // Hold the writer in a first batch until every job below is queued, so
    // they all share the second batch's transaction.
    std::promise<void> started, go;
    auto held = w.submit_future(
        [&started, ready = go.get_future().share()](database&)
        {
            started.set_value();
            ready.wait();
        });
    started.get_future().wait();
    auto a = w.submit_future([](database& db) { users::ensure(db, "a"); });
    auto b = w.submit_future(
        [](database& db)
        {
            auto const id = users::ensure(db, "b");
            auto& q =
                db.prepare("INSERT INTO users(id, external_id, created_at) VALUES(?, 'b2', 0)");
            q.bind(1, id); // duplicate primary key
            q.exec();
        });
    // Swallowing a failed statement: SQLite goes on, PostgreSQL has failed
    // the transaction (and so the job). Either way the job reports success
    // exactly when its write is durable.
    auto c = w.submit_future(
        [](database& db)
        {
            users::ensure(db, "c");
            try
            {
                db.exec("INSERT INTO users(id, external_id, created_at) VALUES('dup', 'c2', 0), "
                        "('dup', 'c3', 0)");
            }
            catch (std::exception const&)
            {
            }
        });
    auto d = w.submit_future([](database& db) { users::ensure(db, "d"); });
    go.set_value();
    held.get();
    a.get();
    CHECK_THROWS_AS(b.get(), storage_error);
    bool c_ok = true;
    try
    {
        c.get();
    }
    catch (storage_error const&)
    {
        c_ok = false;
    }
    d.get();
    w.stop();
    CHECK(w.stats().commits.load() == 2);

    database db(path, open_mode::read_write);
    CHECK(users::find_by_external_id(db, "a"));
    CHECK_FALSE(users::find_by_external_id(db, "b"));
    CHECK(users::find_by_external_id(db, "c").has_value() == c_ok);
    if (test::testing_postgres())
        CHECK_FALSE(c_ok);
    CHECK(users::find_by_external_id(db, "d"));
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
            w.submit_future([i](database& db) { users::ensure(db, "u" + std::to_string(i)); })
                .get();
            // Acknowledge only after the future says durable.
            if (write(fds[1], &i, sizeof i) != sizeof i)
                _exit(1);
        }
    }
    close(fds[1]);
    int last = -1, v;
    while (last < 200 && read(fds[0], &v, sizeof v) == sizeof v)
        last = v;
    // The child was still writing when it died: 200 acknowledged writes
    // came, and the kill (not an early exit) ended it.
    REQUIRE(last >= 200);
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    while (read(fds[0], &v, sizeof v) == sizeof v)
        last = v; // acks already in the pipe
    close(fds[0]);

    database db(path, open_mode::read_write);
    for (int i = 0; i <= last; ++i)
        REQUIRE(users::find_by_external_id(db, "u" + std::to_string(i)));
}

TEST_CASE("writer refuses jobs after stop and surfaces a full disk", "[storage][writer]")
{
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    writer_options opts;
    writer::job fill;
    if (test::testing_postgres())
    {
        // PostgreSQL's disk quota on demand: temp_file_limit (superuser-only;
        // the test cluster's user is one) under a sort too big for work_mem
        // fails with SQLSTATE 53400, class 53 "insufficient resources".
        // SET LOCAL dies with the job's savepoint.
        fill = [](database& db)
        {
            db.exec("SET LOCAL work_mem = '64kB'; SET LOCAL temp_file_limit = '64kB'");
            auto& q = db.prepare("SELECT md5(g::text) AS k FROM generate_series(1, 200000) g ORDER "
                                 "BY k OFFSET 199999");
            q.executeStep();
        };
    }
    else
    {
        database probe(path, open_mode::read_write);
        auto& q = probe.prepare("PRAGMA page_count");
        q.executeStep();
        opts.db.max_page_count = q.getColumn(0).getInt64() + 2;
        q.reset();
        fill = [big = std::string(64 * 1024, 'x')](database& db) { users::ensure(db, "big", big); };
    }
    writer w(path, opts);
    auto f = w.submit_future(fill);
    try
    {
        f.get();
        FAIL("the write fitted");
    }
    catch (storage_error const& e)
    {
        CHECK(e.code() == errc::full);
    }
    // The writer goes on: only the failed job was rolled back.
    w.submit_future([](database& db) { users::ensure(db, "small"); }).get();
    w.stop();
    std::error_code got;
    w.submit([](database&) {}, [&](std::error_code ec) { got = ec; });
    CHECK(got == errc::internal);
    database db(path, open_mode::read_write);
    CHECK(users::find_by_external_id(db, "small"));
    CHECK_FALSE(users::find_by_external_id(db, "big"));
}

// PostgreSQL only ([postgres]: registered in the pg/ run alone): an SQLite
// connection cannot be lost.
TEST_CASE("writer: a connection lost mid-batch fails the whole batch, then it reconnects",
          "[storage][writer][postgres]")
{
    REQUIRE(test::testing_postgres());
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    writer w(path);
    std::int64_t pid = 0;
    w.run_sync(
        [&](database& db)
        {
            auto& q = db.prepare("SELECT pg_backend_pid()");
            q.executeStep();
            pid = q.getColumn(0).getInt64();
            q.reset();
        });

    // One batch: `held` writes, then waits while the connection is killed;
    // x and y come after it in the same transaction. A first batch holds the
    // writer until all three are queued.
    std::promise<void> gate_running, queued, started, go;
    auto gate = w.submit_future(
        [&gate_running, ready = queued.get_future().share()](database&)
        {
            gate_running.set_value();
            ready.wait();
        });
    gate_running.get_future().wait();
    auto held = w.submit_future(
        [&started, ready = go.get_future().share()](database& db)
        {
            users::ensure(db, "before");
            started.set_value();
            ready.wait();
        });
    auto x = w.submit_future([](database& db) { users::ensure(db, "x"); });
    auto y = w.submit_future([](database& db) { users::ensure(db, "y"); });
    queued.set_value();
    gate.get();
    started.get_future().wait();
    {
        database admin(path, open_mode::read_write);
        // With a timeout it returns once the backend is gone, not when signalled.
        auto& kill = admin.prepare("SELECT pg_terminate_backend(?, 10000)");
        kill.bind(1, pid);
        REQUIRE(kill.executeStep());
        CHECK(kill.getColumn(0).getInt() == 1);
        kill.reset();
    }
    go.set_value();
    // Nothing of the batch is durable, so no job of it may report success:
    // not even the one that ran before the connection was lost.
    for (auto* f : {&held, &x, &y})
    {
        try
        {
            f->get();
            FAIL("a job of the lost transaction reported success");
        }
        catch (storage_error const& e)
        {
            CHECK(e.code() == errc::io);
        }
    }
    // The next batch runs on a new connection.
    w.submit_future([](database& db) { users::ensure(db, "after"); }).get();
    w.stop();

    database db(path, open_mode::read_write);
    for (auto const* gone : {"before", "x", "y"})
        CHECK_FALSE(users::find_by_external_id(db, gone));
    CHECK(users::find_by_external_id(db, "after"));
}

TEST_CASE("writer: the loser of a deadlock between two writers runs again after its batch commits",
          "[storage][writer][postgres]")
{
    // PostgreSQL only: one SQLite database has one writer.
    REQUIRE(test::testing_postgres());
    test::temp_dir dir;
    auto const path = test::migrated_db(dir);
    {
        database db(path, open_mode::read_write);
        db.exec("CREATE TABLE rows_t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
        db.exec("INSERT INTO rows_t VALUES (1, 0), (2, 0)");
    }
    // Two nodes' writers; each batch updates one row, waits until the other
    // holds the other row, then updates that one: a lock cycle PostgreSQL
    // breaks by failing one statement (40P01) after deadlock_timeout.
    writer a(path), b(path);
    // Each writer first runs a gate job; the next two jobs are queued while
    // it runs, so the writer then takes them as one batch.
    std::promise<void> open_a, open_b;
    std::latch gates_running(2);
    auto gate = [&gates_running](std::shared_future<void> open)
    {
        return [&gates_running, open](database&)
        {
            gates_running.count_down();
            open.wait();
        };
    };
    a.submit(gate(open_a.get_future().share()));
    b.submit(gate(open_b.get_future().share()));
    gates_running.wait();
    std::latch both_hold(2);
    auto update = [](database& db, int id)
    {
        auto& q = db.prepare("UPDATE rows_t SET v = v + 1 WHERE id = ?");
        q.bind(1, id);
        q.exec();
    };
    a.submit(
        [&](database& db)
        {
            update(db, 1);
            both_hold.arrive_and_wait();
        });
    auto a_crosses = a.submit_future([&](database& db) { update(db, 2); });
    b.submit(
        [&](database& db)
        {
            update(db, 2);
            both_hold.arrive_and_wait();
        });
    auto b_crosses = b.submit_future([&](database& db) { update(db, 1); });
    open_a.set_value(); // each writer now takes its two jobs as one batch
    open_b.set_value();

    CHECK_NOTHROW(a_crosses.get());
    CHECK_NOTHROW(b_crosses.get());
    CHECK(a.stats().retried_jobs + b.stats().retried_jobs == 1);
    CHECK(a.stats().failed_jobs + b.stats().failed_jobs == 0);
    a.stop();
    b.stop();
    database db(path, open_mode::read_only);
    auto& q = db.prepare("SELECT sum(v) FROM rows_t");
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getInt64() == 4); // every update applied exactly once
    q.reset();
}

TEST_CASE("a failed statement leaves storage as database_error on either backend, with the mapped "
          "errc and the backend's code",
          "[storage][errors]")
{
    test::temp_dir dir;
    auto path = test::migrated_db(dir);
    database db(path, open_mode::read_write);
    users::ensure(db, "alice");
    // A constraint violation: the second insert of the same primary key.
    db.exec("INSERT INTO users(id, external_id, created_at) VALUES('u-dup', 'dup-1', 0)");
    try
    {
        db.exec("INSERT INTO users(id, external_id, created_at) VALUES('u-dup', 'dup-2', 0)");
        FAIL("the duplicate insert succeeded");
    }
    catch (database_error const& e)
    {
        CHECK(e.code() == errc::constraint);
        if (db.is_postgres())
            CHECK(e.sqlstate() == "23505"); // unique_violation
        else
            CHECK((e.native_code() & 0xff) == 19); // SQLITE_CONSTRAINT
    }
    // A statement that does not parse: the same type (PostgreSQL prepares
    // lazily, so it fails when run).
    CHECK_THROWS_AS(db.exec("SELEKT 1"), database_error);
    // And the writer reports the mapped code to the job's completion.
    writer w(path);
    std::promise<std::error_code> done;
    w.submit([](database& d)
             { d.exec("INSERT INTO users(id, external_id, created_at) VALUES('u-dup', 'x', 0)"); },
             [&](std::error_code ec) { done.set_value(ec); });
    CHECK(done.get_future().get() == make_error_code(errc::constraint));
    w.stop();
}
