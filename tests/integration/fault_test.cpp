// Fault injection against the real binary (issue #9): kill -9 under load,
// a database locked by another process, a full disk, hostile clients (10 MB
// frames, thousands of idle sockets). Each test ends with the server still
// serving and `chatstream check` passing on its database.
#include "ws_helpers.hpp"

#include "chatstream/storage/database.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

using namespace chatstream;
using namespace chatstream::test;
using namespace std::chrono_literals;

// Memory bounds only hold for the plain build: ASan/TSan shadow memory and
// quarantines multiply RSS. So each bounded case is a function run by two
// names: the plain build runs it once, checking memory too; a sanitizer
// build runs the behaviour under a name that claims no bound, and reports
// the bound's name as skipped rather than passed.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MEMORY_BOUND_CASE(behaviour, bound, tags, body)                                            \
    TEST_CASE(behaviour, tags)                                                                     \
    {                                                                                              \
        body(false);                                                                               \
    }                                                                                              \
    TEST_CASE(behaviour ", " bound, tags)                                                          \
    {                                                                                              \
        skip_test("RSS bounds are not measurable under sanitizers (shadow memory, quarantine)");   \
    }
#else
#define MEMORY_BOUND_CASE(behaviour, bound, tags, body)                                            \
    TEST_CASE(behaviour ", " bound, tags)                                                          \
    {                                                                                              \
        body(true);                                                                                \
    }
#endif

namespace
{

/// `chatstream check --db PATH` (offline: no server may run on it). @return exit code.
int run_check(std::string const& db)
{
    auto const cmd = std::string(CHATSTREAM_BINARY) + " --log-level warn check --db '" + db + "'";
    auto const status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::int64_t count(storage::database& db, std::string const& sql)
{
    auto& q = db.prepare(sql);
    REQUIRE(q.executeStep());
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

/// A generation on a fresh connection completes: the server still serves.
void expect_serving(server_process const& server)
{
    CHECK(http_get(server.port(), "/healthz").status == 200);
    ws_client c(server.port());
    c.send(generate("/tokens 20"));
    CHECK(str(read_generation(c).finish.at("status")) == "complete");
}

/// Raises the soft RLIMIT_NOFILE to @p want (or the hard limit); the server
/// forked afterwards inherits it. @return the new soft limit.
rlim_t raise_nofile(rlim_t want)
{
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = std::max(rl.rlim_cur, std::min(want, rl.rlim_max));
    ::setrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

} // namespace

TEST_CASE("kill -9 under load: acked messages kept, all terminal, no partial tool call",
          "[integration][fault]")
{
    temp_dir dir;
    auto const db_path = dir.file("chat.db");
    server_process server(db_path, {"--rate-limit", "0"}); // load, not a flood

    // 20 clients each generate in a loop (text, tool calls mid-stream, long and
    // short replies) until the server dies under them.
    struct acked
    {
        std::string user_message_id;
        std::string message_id;
    };
    std::mutex mutex;
    std::vector<acked> acks;
    std::vector<std::string> errors_before_kill; // a client failing on its own is a failure
    std::atomic<bool> killed{false};
    std::atomic<int> finished{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < 20; ++i)
        clients.emplace_back(
            [&, i]
            {
                try
                {
                    ws_client c(server.port(), "/ws?user=u" + std::to_string(i % 5));
                    for (int n = 0;; ++n)
                    {
                        std::string prompt;
                        switch ((i + n) % 3)
                        {
                        case 0:
                            prompt = "/tokens 300 /delay 2";
                            break;
                        case 1:
                            prompt = R"(/tokens 40 /delay 3 /tool calculator {"expression":"6*7"})";
                            break;
                        default:
                            prompt = R"(/tool datetime {"timezone":"UTC"} /tokens 25 /delay 1)";
                        }
                        c.send(generate(prompt));
                        auto ack = c.read_until("ack");
                        {
                            std::lock_guard lock(mutex);
                            acks.push_back(
                                {str(ack.at("userMessageId")), str(ack.at("messageId"))});
                        }
                        c.read_until("finish", str(ack.at("messageId")));
                        ++finished;
                    }
                }
                catch (std::exception const& e)
                {
                    // Expected once the server is killed under this client;
                    // anything before that is the server failing it.
                    if (!killed)
                    {
                        std::lock_guard lock(mutex);
                        errors_before_kill.push_back("client " + std::to_string(i) + ": " +
                                                     e.what());
                    }
                }
            });
    // Let the load build up (some generations done, many in flight), then kill.
    auto const deadline = std::chrono::steady_clock::now() + 20s;
    while (finished < 100 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    REQUIRE(finished >= 100);
    std::this_thread::sleep_for(137ms);
    killed = true;
    CHECK(server.stop(SIGKILL) == -SIGKILL);
    for (auto& t : clients)
        t.join();
    for (auto const& e : errors_before_kill)
        FAIL_CHECK(e);
    INFO(acks.size() << " acked, " << finished << " finished before the kill");

    // Restart marks what was running interrupted, and finalizes its tool calls.
    server.restart();
    expect_serving(server);
    CHECK(server.stop(SIGTERM) == 0);
    {
        storage::database db(db_path, storage::open_mode::read_only);
        auto& user = db.prepare("SELECT role FROM messages WHERE id = ?");
        auto& assistant = db.prepare("SELECT status FROM messages WHERE id = ?");
        std::map<std::string, int> statuses;
        for (auto const& a : acks)
        {
            user.bind(1, a.user_message_id);
            REQUIRE(user.executeStep());
            CHECK(user.getColumn(0).getString() == "user");
            user.reset();
            assistant.bind(1, a.message_id);
            REQUIRE(assistant.executeStep());
            ++statuses[assistant.getColumn(0).getString()];
            assistant.reset();
        }
        CHECK(statuses["complete"] > 0);
        CHECK(statuses["interrupted"] > 0);
        CHECK(statuses["complete"] + statuses["interrupted"] == static_cast<int>(acks.size()));
        CHECK(count(db, "SELECT count(*) FROM messages WHERE role = 'assistant' AND status NOT "
                        "IN ('complete','interrupted')") == 0);
        CHECK(count(db, "SELECT count(*) FROM tool_calls WHERE is_partial = 1 OR result IS NULL") ==
              0);
        CHECK(count(db, "SELECT count(*) FROM tool_calls") > 0);
    }
    CHECK(run_check(db_path) == 0);
}

TEST_CASE("database locked by another process: a clear error, then service resumes",
          "[integration][fault]")
{
    temp_dir dir;
    auto const db_path = dir.file("chat.db");
    server_process server(db_path);
    ws_client c(server.port());
    c.send(generate("hello"));
    auto const first = read_generation(c);

    // A generation already streaming when the lock is taken, and one asked
    // for while it is held (the writer's busy timeout is 5 s).
    ws_client streaming(server.port());
    auto const running = start_generation(streaming, "/tokens 1500 /delay 2", 10);
    {
        // Waits for the writer's batch in flight (it flushes every 50 ms).
        SQLite::Database other(db_path, SQLite::OPEN_READWRITE, 5000);
        other.exec("BEGIN EXCLUSIVE");
        auto const locked_at = std::chrono::steady_clock::now();

        // Reads are not blocked (WAL).
        auto m = c.query("getMessage", {{"messageId", first.ack.at("messageId")}});
        CHECK(str(m.at("type")) == "result");

        c.send(generate("are you there?", "locked"));
        auto const e = c.read();
        INFO(json::serialize(e));
        CHECK(str(e.at("type")) == "error");
        CHECK(str(e.at("id")) == "locked");
        CHECK(str(e.at("code")) == "internal");
        CHECK_THAT(str(e.at("message")), Catch::Matchers::Contains("busy"));
        // At worst the request queues behind a flush batch already waiting
        // out its busy timeout, then waits out its own: two timeouts.
        CHECK(std::chrono::steady_clock::now() - locked_at < 12s);
        other.exec("ROLLBACK");
    }
    // The stream that ran through the lock ends complete, its stored content
    // equal to what was streamed (a failed partial flush is retried, and so
    // is a final commit that hit the lock).
    auto rest = read_until_finish(streaming, core::utf16_length(running.text), running.message_id);
    CHECK(str(rest.finish.at("status")) == "complete");
    auto m = c.query("getMessage", {{"messageId", running.message_id}});
    CHECK(str(m.at("data").at("status")) == "complete");
    CHECK(str(m.at("data").at("content")) == running.text + rest.text);

    c.send(generate("now?"));
    CHECK(str(read_generation(c).finish.at("status")) == "complete");
    CHECK(server.stop(SIGTERM) == 0);
    {
        // The refused request left nothing behind: 3 exchanges = 6 messages.
        storage::database db(db_path, storage::open_mode::read_only);
        CHECK(count(db, "SELECT count(*) FROM messages") == 6);
    }
    CHECK(run_check(db_path) == 0);
}

TEST_CASE("disk full (tiny tmpfs): errors to the client, nothing corrupt, recovers with space",
          "[integration][fault]")
{
    // Whether a tmpfs can be mounted here, asked before anything exists that
    // skip_test (which exits) would leave behind.
    std::string cannot_mount;
    {
        temp_dir probe;
        auto const at = probe.file("tmpfs");
        std::filesystem::create_directory(at);
        if (::mount("tmpfs", at.c_str(), "tmpfs", 0, "size=4m") != 0)
            cannot_mount = std::string("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): ") +
                           std::strerror(errno);
        else
            ::umount2(at.c_str(), MNT_DETACH);
    }
    if (!cannot_mount.empty())
        skip_test(cannot_mount);
    temp_dir dir;
    auto const mnt = dir.file("tmpfs");
    std::filesystem::create_directory(mnt);
    REQUIRE(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") == 0);
    struct unmount
    {
        std::string path;
        ~unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } guard{mnt};

    auto const db_path = mnt + "/chat.db";
    auto const filler = mnt + "/filler";
    {
        server_process server(db_path);
        ws_client c(server.port());
        c.send(generate("/tokens 50"));
        auto const before = read_generation(c);
        CHECK(str(before.finish.at("status")) == "complete");

        // A generation streaming when the disk fills up.
        ws_client streaming(server.port());
        auto const running = start_generation(streaming, "/tokens 3000 /delay 1", 10);

        // Take every free byte of the file system.
        {
            std::ofstream f(filler, std::ios::binary);
            std::string const block(4096, 'x');
            while (f.write(block.data(), block.size()))
                ;
        }
        struct statvfs vfs
        {
        };
        ::statvfs(mnt.c_str(), &vfs);
        CHECK(vfs.f_bavail == 0);

        // Every request now fails somewhere; each failure reaches the client as
        // an `error` (refused message) or a finish/error event (its end could
        // not be stored). Generations big enough to outgrow the WAL's free pages.
        int errors = 0;
        for (int i = 0; i < 6 && errors == 0; ++i)
        {
            c.send(generate("/tokens 3000 " + std::string(20000, 'p'), "full" + std::to_string(i)));
            for (;;)
            {
                auto e = c.read();
                auto const type = str(e.at("type"));
                if (type == "error")
                {
                    INFO(json::serialize(e));
                    CHECK(str(e.at("code")) == "internal");
                    CHECK_THAT(str(e.at("message")), Catch::Matchers::Contains("full"));
                    ++errors; // refused, or its end could not be stored
                    break;
                }
                if (type == "finish")
                {
                    if (str(e.at("status")) == "error")
                        ++errors;
                    break;
                }
            }
        }
        CHECK(errors > 0);
        // The running one cannot store its end: the client hears it.
        std::string running_status;
        for (;;)
        {
            auto e = streaming.read();
            if (e.contains("messageId") && str(e.at("messageId")) == running.message_id &&
                (str(e.at("type")) == "finish" || str(e.at("type")) == "error"))
            {
                INFO(json::serialize(e));
                CHECK(str(e.at("type")) == "error");
                CHECK_THAT(str(e.at("message")), Catch::Matchers::Contains("full"));
                break;
            }
        }
        CHECK(http_get(server.port(), "/healthz").status == 200);
        // Earlier data is still readable while the disk is full.
        auto m = c.query("getMessage", {{"messageId", before.ack.at("messageId")}});
        CHECK(str(m.at("data").at("status")) == "complete");

        // Space comes back: the next generation is stored.
        std::filesystem::remove(filler);
        c.send(generate("/tokens 100"));
        auto const after = read_generation(c);
        CHECK(str(after.finish.at("status")) == "complete");
        auto m2 = c.query("getMessage", {{"messageId", after.ack.at("messageId")}});
        CHECK(str(m2.at("data").at("content")) == after.text);
        // ... and once space is back it becomes `error` (what the client was
        // told) with its text, not stuck `generating` until a restart.
        std::string status;
        for (auto until = std::chrono::steady_clock::now() + 10s;
             std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(100ms))
            if ((status = str(c.query("getMessage", {{"messageId", running.message_id}})
                                  .at("data")
                                  .at("status"))) != "generating")
                break;
        CHECK(status == "error");
        c.stream().close(websocket::close_code::normal);
        CHECK(server.stop(SIGTERM) == 0);
    }
    // Nothing corrupt; a message whose end could not be stored was left
    // unfinished and the next start marks it interrupted.
    {
        server_process again(db_path);
        expect_serving(again);
    }
    CHECK(run_check(db_path) == 0);
}

namespace
{

void huge_frame_is_refused(bool measure_memory)
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto const rss_before = server.rss_kib();
    ws_client c(server.port());
    std::string const huge =
        R"({"type":"generate","content":")" + std::string(10u << 20, 'a') + R"("})";
    // The server stops reading after the frame header, so the write may
    // fail part way (reset) or complete into the kernel buffers; either way
    // the close code is 1009.
    beast::error_code ec;
    c.stream().text(true);
    bool done = false;
    c.stream().async_write(net::buffer(huge),
                           [&](beast::error_code e, std::size_t)
                           {
                               ec = e;
                               done = true;
                           });
    auto& ioc = static_cast<net::io_context&>(c.stream().get_executor().context());
    ioc.restart();
    ioc.run_for(15s);
    CHECK(done);
    if (!ec)
    {
        beast::flat_buffer buf;
        c.stream().read(buf, ec);
        CHECK(c.stream().reason().code == websocket::close_code::too_big);
    }
    CHECK(ec);
    if (measure_memory)
        CHECK(server.rss_kib() - rss_before < 8 * 1024); // not held in memory
    expect_serving(server);
}

} // namespace

MEMORY_BOUND_CASE("a 10 MB frame is refused with 1009", "RSS growth under 8 MiB",
                  "[integration][fault]", huge_frame_is_refused)

// The 10 MB write above may fail part way (the server resets the connection
// with the payload unread), and then the close code cannot be seen. Here the
// client announces a 10 MB frame but sends only 64 KiB of it, which the
// socket buffers hold: the server must answer with 1009 after the header,
// without waiting for (or buffering) the rest.
TEST_CASE("a frame announced over the limit is closed with 1009 after its header",
          "[integration][fault]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    std::uint64_t const announced = 10u << 20;
    std::string frame{'\x81', '\xff'}; // FIN + text; masked, 64-bit length
    for (int shift = 56; shift >= 0; shift -= 8)
        frame += static_cast<char>((announced >> shift) & 0xff);
    frame += std::string(4, '\0'); // mask key 0: the payload goes as is
    // A sliver of the announced payload, small enough to sit in the socket
    // buffers: a larger one races the server's close (EPIPE on the write,
    // then a reset that can discard the close frame before it is read).
    frame += std::string(1024, 'a');
    net::write(c.stream().next_layer(), net::buffer(frame));
    try
    {
        c.read_text(); // fails within 15 s if the server waits for the payload
        FAIL("the server sent a message instead of closing");
    }
    catch (beast::system_error const&)
    {
        // closed, or a reset while answering the close: the reason says which
    }
    CHECK(c.stream().reason().code ==
          websocket::close_code::too_big); // none if no close frame came
    // The server logs once its side of the close is done, which can be a
    // moment after the client saw the close frame.
    std::string log;
    for (int i = 0; i < 250 && log.find("closed with 1009") == std::string::npos; ++i)
    {
        if (i)
            std::this_thread::sleep_for(20ms);
        log = server.log();
    }
    CHECK(log.find("closed with 1009") != std::string::npos);
    expect_serving(server);
}

namespace
{

void idle_connections(bool measure_memory)
{
    constexpr std::size_t n = 2000;
    if (raise_nofile(3 * n + 256) < 3 * n + 256)
        skip_test("RLIMIT_NOFILE too low for " + std::to_string(n) + " connections");
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto const rss_before = server.rss_kib();

    // Raw sockets on one io_context, upgraded concurrently.
    net::io_context ioc;
    std::vector<std::unique_ptr<websocket::stream<tcp::socket>>> sockets;
    std::atomic<std::size_t> upgraded{0};
    tcp::endpoint const ep(net::ip::make_address("127.0.0.1"), server.port());
    for (std::size_t i = 0; i < n; ++i)
    {
        auto ws = std::make_unique<websocket::stream<tcp::socket>>(ioc);
        auto* p = ws.get();
        p->next_layer().async_connect(ep,
                                      [p, &upgraded, i](beast::error_code ec)
                                      {
                                          if (ec)
                                              return;
                                          p->async_handshake(
                                              "127.0.0.1", "/ws?user=idle" + std::to_string(i % 50),
                                              [&upgraded](beast::error_code ec)
                                              {
                                                  if (!ec)
                                                      ++upgraded;
                                              });
                                      });
        sockets.push_back(std::move(ws));
        if (i % 200 == 199)
        {
            ioc.restart();     // run_for stops the context when it runs out of work
            ioc.run_for(50ms); // keep the accept backlog short
        }
    }
    auto const deadline = std::chrono::steady_clock::now() + 30s;
    while (upgraded < n && std::chrono::steady_clock::now() < deadline)
    {
        ioc.restart();
        ioc.run_for(50ms);
    }
    CHECK(upgraded == n);

    // The server counts a connection once its accept handler ran, which can
    // be a moment after the client saw the handshake: poll briefly.
    std::string metrics;
    auto const want = "\nchatstream_connections " + std::to_string(n) + "\n";
    for (int i = 0; i < 100 && metrics.find(want) == std::string::npos; ++i)
    {
        if (i)
            std::this_thread::sleep_for(20ms);
        metrics = http_get(server.port(), "/metrics").body;
    }
    INFO(metrics.substr(0, 400));
    CHECK(metrics.find(want) != std::string::npos);
    expect_serving(server);
    auto const growth_kib = server.rss_kib() - rss_before;
    INFO("RSS growth " << growth_kib << " KiB for " << n << " idle connections");
    if (measure_memory)
        CHECK(growth_kib < 64 * 1024); // ~9 KiB each measured (bench/RESULTS.md); 32 KiB allowed

    // They all go away cleanly.
    for (auto& s : sockets)
    {
        beast::error_code ec;
        s->next_layer().close(ec);
    }
    sockets.clear();
    auto const drained = std::chrono::steady_clock::now() + 10s;
    std::string m;
    while (std::chrono::steady_clock::now() < drained)
    {
        m = http_get(server.port(), "/metrics").body;
        if (m.find("\nchatstream_connections 0") != std::string::npos)
            break;
        std::this_thread::sleep_for(20ms);
    }
    CHECK(m.find("\nchatstream_connections 0") != std::string::npos);
}

} // namespace

MEMORY_BOUND_CASE("2000 idle connections: health, a fresh generation, all drain",
                  "RSS growth under 64 MiB", "[integration][fault]", idle_connections)

namespace
{

void connections_after_a_large_frame(bool measure_memory)
{
    // Issue 20 finding 2: each session's simdjson parser kept the capacity of
    // its largest frame (~850 KB after 64 KiB), 1,000 such idle connections
    // +830 MB.
    constexpr std::size_t n = 1000;
    if (raise_nofile(3 * n + 256) < 3 * n + 256)
        skip_test("RLIMIT_NOFILE too low for " + std::to_string(n) + " connections");
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto const rss_before = server.rss_kib();

    // A ping padded to just under the 64 KiB frame limit: parsed in full,
    // answered with a small pong.
    auto const frame =
        R"({"type":"ping","id":"p","pad":")" + std::string(64 * 1024 - 64, 'x') + R"("})";
    struct peer
    {
        explicit peer(net::io_context& ioc) : ws(ioc) {}
        websocket::stream<tcp::socket> ws;
        beast::flat_buffer reply;
    };
    net::io_context ioc;
    std::vector<std::unique_ptr<peer>> peers;
    std::atomic<std::size_t> answered{0};
    tcp::endpoint const ep(net::ip::make_address("127.0.0.1"), server.port());
    for (std::size_t i = 0; i < n; ++i)
    {
        auto p = std::make_unique<peer>(ioc);
        auto* c = p.get();
        c->ws.next_layer().async_connect(
            ep,
            [c, &frame, &answered, i](beast::error_code ec)
            {
                if (ec)
                    return;
                c->ws.async_handshake(
                    "127.0.0.1", "/ws?user=big" + std::to_string(i % 50),
                    [c, &frame, &answered](beast::error_code ec)
                    {
                        if (ec)
                            return;
                        c->ws.async_write(
                            net::buffer(frame),
                            [c, &answered](beast::error_code ec, std::size_t)
                            {
                                if (ec)
                                    return;
                                c->ws.async_read(
                                    c->reply,
                                    [c, &answered](beast::error_code ec, std::size_t)
                                    {
                                        if (!ec && beast::buffers_to_string(c->reply.data())
                                                           .find("\"pong\"") != std::string::npos)
                                            ++answered;
                                    });
                            });
                    });
            });
        peers.push_back(std::move(p));
        if (i % 100 == 99)
        {
            ioc.restart();
            ioc.run_for(50ms);
        }
    }
    auto const deadline = std::chrono::steady_clock::now() + 60s;
    while (answered < n && std::chrono::steady_clock::now() < deadline)
    {
        ioc.restart();
        ioc.run_for(50ms);
    }
    REQUIRE(answered == n); // every frame was parsed and answered
    expect_serving(server);
    auto const growth_kib = server.rss_kib() - rss_before;
    INFO("RSS growth " << growth_kib << " KiB for " << n
                       << " connections after a 64 KiB frame each");
    if (measure_memory)
        CHECK(growth_kib <= 64 * 1024);
    for (auto& p : peers)
    {
        beast::error_code ec;
        p->ws.next_layer().close(ec);
    }
}

} // namespace

MEMORY_BOUND_CASE("1000 connections that each sent one 64 KiB frame: all answered",
                  "RSS growth at most 64 MiB", "[integration][fault][hostile]",
                  connections_after_a_large_frame)

namespace
{

/// The server's user+system CPU time so far, in seconds (/proc/PID/stat).
double cpu_seconds(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2)); // the name may hold spaces
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i)
        if (i == 14)
            utime = std::stod(f);
        else if (i == 15)
        {
            stime = std::stod(f);
            break;
        }
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// GET /healthz with a 3 s deadline (tcp_stream deadlines apply to async
/// operations only). @return whether it answered 200.
bool healthz(unsigned short port)
{
    net::io_context ioc;
    beast::tcp_stream s(ioc);
    http::request<http::empty_body> req(http::verb::get, "/healthz", 11);
    req.set(http::field::host, "127.0.0.1");
    beast::flat_buffer b;
    http::response<http::string_body> res;
    bool ok = false;
    s.expires_after(3s);
    s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                    [&](beast::error_code ec)
                    {
                        if (!ec)
                            http::async_write(s, req,
                                              [&](beast::error_code ec, std::size_t)
                                              {
                                                  if (!ec)
                                                      http::async_read(
                                                          s, b, res,
                                                          [&](beast::error_code ec, std::size_t)
                                                          { ok = !ec && res.result_int() == 200; });
                                              });
                    });
    ioc.run();
    return ok;
}

} // namespace

TEST_CASE("at the open-file limit: /healthz answers within 1 s and the server stays under 20 % CPU",
          "[integration][fault][hostile]")
{
    // Issue 20 finding 3: with `ulimit -n 256` and 400 connections the
    // acceptor retried EMFILE at once (100-130 % CPU) and /healthz timed out.
    // The server inherits the lowered soft limit; the test gets its own back.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // The sanitizer runtimes need descriptors of their own: at EMFILE,
    // UBSan's vptr check probes memory through pipe(), fails, and reports a
    // valid object as "invalid vptr" (seen in CI), the symbolizer cannot
    // start. The plain build runs this case.
    skip_test("the server runs at EMFILE on purpose, where the sanitizer runtime itself fails");
#endif
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    if (saved.rlim_max < 1024)
        skip_test("RLIMIT_NOFILE hard limit below 1024");
    temp_dir dir;
    rlimit low = saved;
    low.rlim_cur = 256;
    ::setrlimit(RLIMIT_NOFILE, &low);
    std::optional<server_process> server;
    try
    {
        server.emplace(dir.file("chat.db"));
    }
    catch (...)
    {
        ::setrlimit(RLIMIT_NOFILE, &saved);
        throw;
    }
    saved.rlim_cur = std::max<rlim_t>(saved.rlim_cur, 4096);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    auto const port = server->port();

    // 400 WebSocket clients (the admitted ones stay; the rest are refused
    // with 503), then idle TCP connections that never send a byte, enough
    // to push the server into EMFILE.
    net::io_context ioc;
    std::vector<std::unique_ptr<websocket::stream<tcp::socket>>> sockets;
    std::atomic<std::size_t> upgraded{0};
    tcp::endpoint const ep(net::ip::make_address("127.0.0.1"), port);
    for (std::size_t i = 0; i < 400; ++i)
    {
        auto ws = std::make_unique<websocket::stream<tcp::socket>>(ioc);
        auto* p = ws.get();
        p->next_layer().async_connect(
            ep,
            [p, &upgraded, i](beast::error_code ec)
            {
                if (!ec)
                    p->async_handshake("127.0.0.1", "/ws?user=fd" + std::to_string(i % 16),
                                       [&upgraded](beast::error_code ec) { upgraded += !ec; });
            });
        sockets.push_back(std::move(ws));
    }
    std::vector<std::unique_ptr<tcp::socket>> idle;
    for (int i = 0; i < 100; ++i)
    {
        auto s = std::make_unique<tcp::socket>(ioc);
        s->async_connect(ep, [](beast::error_code) {});
        idle.push_back(std::move(s));
    }
    for (int i = 0; i < 40; ++i)
    {
        ioc.restart();
        ioc.run_for(50ms);
    }
    INFO("upgraded " << upgraded << " of 400");
    CHECK(upgraded > 100); // admitted up to the limit
    CHECK(upgraded < 400); // not all: the limit is real

    // Poll /healthz for 5 s while the sockets stay, the client context
    // running between polls so its sockets keep being served.
    std::atomic<bool> polling{true};
    std::thread client(
        [&]
        {
            while (polling)
            {
                ioc.restart();
                ioc.run_for(20ms);
            }
        });
    auto const cpu_before = cpu_seconds(server->pid());
    auto const t0 = std::chrono::steady_clock::now();
    std::chrono::milliseconds worst{0};
    int answered = 0, polls = 0;
    while (std::chrono::steady_clock::now() - t0 < 5s)
    {
        auto const start = std::chrono::steady_clock::now();
        answered += healthz(port);
        ++polls;
        worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start));
        std::this_thread::sleep_for(100ms);
    }
    auto const elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto const cpu = (cpu_seconds(server->pid()) - cpu_before) / elapsed;
    polling = false;
    client.join();
    INFO("healthz " << answered << "/" << polls << ", slowest " << worst.count()
                    << " ms, server CPU " << cpu * 100 << " %");
    CHECK(answered == polls);
    CHECK(worst < 1000ms);
    CHECK(cpu < 0.20);
    auto const metrics = http_get(port, "/metrics").body;
    CHECK(metrics.find("chatstream_connections_refused_total{reason=\"server\"} 0\n") ==
          std::string::npos); // the 503s were counted
    CHECK(metrics.find("chatstream_accept_errors_total 0\n") ==
          std::string::npos); // EMFILE was hit
    for (auto& s : sockets)
    {
        beast::error_code ec;
        s->next_layer().close(ec);
    }
    for (auto& s : idle)
    {
        beast::error_code ec;
        s->close(ec);
    }
    expect_serving(*server);
    CHECK(server->stop(SIGTERM) == 0);
}
