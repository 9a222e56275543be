// The WebSocket session in process, over beast::test::stream, as Beast's own
// tests drive their streams: a real hub, writer and read pool on a temp
// database, a client websocket on the other end of the test stream, and
// fail_count to make the Nth stream operation of the session fail.
#include "detail/ws_session_impl.hpp"

#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"
#include "support/temp_db.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>

using namespace chatstream;
using namespace chatstream::streaming;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;

namespace
{

using test_session = detail::basic_ws_session<beast::test::stream>;

struct fixture
{
    test::temp_dir dir;
    std::string path = test::migrated_db(dir);
    storage::writer writer{path};
    storage::read_pool reads{path, 1};
    std::unique_ptr<provider> model = make_scripted_provider({});
    tool_registry tools = tool_registry::with_builtins();
    server_metrics metrics;
    change_feed changes;
    net::io_context ioc;
    net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
    stream_hub hub{make_hub()};
    std::shared_ptr<detail::server_context> ctx = make_context();
    std::string user_id = [&]
    {
        std::string id;
        writer.run_sync([&](storage::database& db) { id = storage::users::ensure(db, "alice"); });
        return id;
    }();

    ~fixture()
    {
        run_until([] { return false; }, std::chrono::milliseconds(50));
        reads.stop();
        writer.stop();
    }

    stream_hub make_hub()
    {
        hub_context h{ioc, writer, reads, *model, tools, metrics, std::chrono::milliseconds(10)};
        h.changes = &changes;
        return stream_hub(h);
    }

    std::shared_ptr<detail::server_context> make_context()
    {
        server_options o;
        o.db_path = path;
        o.files_dir = (dir.path() / "files").string();
        o.max_connections = 16; // make_server derives it from RLIMIT_NOFILE
        o.max_connections_per_user = 4;
        return std::make_shared<detail::server_context>(o, writer, reads, hub, changes, metrics,
                                                        outbound_limits{});
    }

    /// Runs the io_context (this thread only) until @p done or @p limit.
    bool run_until(std::function<bool()> const& done,
                   std::chrono::milliseconds limit = std::chrono::seconds(10))
    {
        auto const deadline = std::chrono::steady_clock::now() + limit;
        while (!done())
        {
            if (std::chrono::steady_clock::now() > deadline)
                return false;
            ioc.run_for(std::chrono::milliseconds(5));
        }
        return true;
    }
};

/// A client on one end of a test stream and a session on the other.
struct connection
{
    beast::test::stream server_end;
    websocket::stream<beast::test::stream> client;
    beast::flat_buffer client_buffer;
    std::weak_ptr<test_session> session;
    std::vector<json::object> events;
    std::vector<std::string> outbox; ///< client frames not yet written, in order
    bool writing = false;
    bool upgraded = false;
    bool client_failed = false;
    bool request_failed = false; ///< the upgrade request never reached a session

    connection(fixture& f, beast::test::fail_count* fc)
        // With a fail_count, Beast's test stream takes the io_context (its
        // executor, not a strand: the session then has no home strand and
        // its generations run on their own, which one test thread allows).
        : server_end(fc ? beast::test::stream(f.ioc, *fc)
                        : beast::test::stream(net::any_io_executor(net::make_strand(f.ioc)))),
          client(f.ioc)
    {
        server_end.connect(client.next_layer());
    }

    /// The upgrade, as the HTTP session does it: read the request on the
    /// server end, then hand the stream and the request to the session.
    void upgrade(fixture& f)
    {
        client.async_handshake("localhost", "/ws",
                               [this](beast::error_code ec)
                               {
                                   upgraded = !ec;
                                   client_failed = static_cast<bool>(ec);
                               });
        auto req = std::make_shared<http::request<http::string_body>>();
        auto buffer = std::make_shared<beast::flat_buffer>();
        http::async_read(server_end, *buffer, *req,
                         [this, &f, req, buffer](beast::error_code ec, std::size_t)
                         {
                             // The HTTP session's part: a failure here
                             // leaves no session (tests/integration cover it).
                             if (ec)
                             {
                                 request_failed = true;
                                 return server_end.close();
                             }
                             auto ticket = detail::admit(f.ctx->admission, f.metrics, f.user_id);
                             auto s = std::make_shared<test_session>(
                                 std::move(server_end), f.ctx, f.user_id, std::nullopt,
                                 std::move(std::get<detail::admission_ticket>(ticket)));
                             session = s;
                             s->run(std::move(*req));
                         });
    }

    /// Queues @p text; one client write in flight at a time, as Beast requires.
    void send(std::string text)
    {
        outbox.push_back(std::move(text));
        if (!writing)
            write_next();
    }

    void write_next()
    {
        if (outbox.empty() || client_failed)
        {
            writing = false;
            return;
        }
        writing = true;
        client.text(true);
        client.async_write(net::buffer(outbox.front()),
                           [this](beast::error_code ec, std::size_t)
                           {
                               outbox.erase(outbox.begin());
                               client_failed = client_failed || static_cast<bool>(ec);
                               write_next();
                           });
    }

    /// Reads frames until the client side fails or the socket closes.
    void read_all()
    {
        client.async_read(
            client_buffer,
            [this](beast::error_code ec, std::size_t)
            {
                if (ec)
                {
                    client_failed = true;
                    return;
                }
                events.push_back(
                    json::parse(beast::buffers_to_string(client_buffer.cdata())).as_object());
                client_buffer.consume(client_buffer.size());
                read_all();
            });
    }

    bool saw(std::string_view type) const
    {
        for (auto const& e : events)
            if (e.at("type").as_string() == type)
                return true;
        return false;
    }

    std::string text() const
    {
        std::string out;
        for (auto const& e : events)
            if (e.at("type").as_string() == "text-delta")
                out += e.at("delta").as_string();
        return out;
    }
};

} // namespace

TEST_CASE("ws_session over test::stream: ping, a bad frame and a generation", "[ws_session]")
{
    fixture f;
    connection c(f, nullptr);
    c.upgrade(f);
    REQUIRE(f.run_until([&] { return c.upgraded || c.client_failed; }));
    REQUIRE(c.upgraded);
    c.read_all();

    c.send(R"({"type":"ping","id":"p1"})");
    c.send(R"({"type":"nonsense","id":"x"})");
    c.send(R"({"type":"generate","id":"g","content":"/tokens 40"})");
    REQUIRE(f.run_until([&] { return c.saw("finish") || c.client_failed; }));
    REQUIRE_FALSE(c.client_failed);

    CHECK(c.events.front().at("type").as_string() == "pong");
    bool bad_request = false;
    for (auto const& e : c.events)
        bad_request = bad_request || (e.at("type").as_string() == "error" &&
                                      e.at("code").as_string() == "bad_request");
    CHECK(bad_request);
    CHECK(c.saw("ack"));
    // The deltas add up to the committed answer.
    std::string message_id;
    for (auto const& e : c.events)
        if (e.at("type").as_string() == "finish")
            message_id = e.at("messageId").as_string().c_str();
    auto const stored = f.reads.run_sync(
        [&](storage::database& db) { return storage::messages::get(db, f.user_id, message_id); });
    REQUIRE(stored);
    CHECK(stored->status == "complete");
    CHECK_FALSE(stored->content.empty());
    CHECK(c.text() == stored->content);
    CHECK(f.metrics.connections.load() == 1);

    // The client goes away: the session ends, unregisters and is freed.
    c.client.next_layer().close();
    REQUIRE(f.run_until([&] { return c.session.expired(); }));
    CHECK(f.metrics.connections.load() == 0);
}

TEST_CASE("ws_session: a failure at every stream operation ends the session cleanly",
          "[ws_session]")
{
    // Beast's idiom: fail the 1st, 2nd, ... operation of the session's
    // stream until the scenario runs through without reaching the failure.
    // At each point the session must end: freed (nothing keeps it alive),
    // unregistered, its connection count and admission released, and the
    // generation it started still completes in the database.
    fixture f;
    int const limit = 200;
    int n = 1;
    for (; n < limit; ++n)
    {
        beast::test::fail_count fc(n);
        bool finished = false;
        {
            connection c(f, &fc);
            c.upgrade(f);
            REQUIRE(f.run_until([&] { return c.upgraded || c.client_failed || c.request_failed; }));
            if (c.upgraded)
            {
                c.read_all();
                c.send(R"({"type":"ping","id":"p1"})");
                c.send(R"({"type":"generate","id":"g","content":"/tokens 8"})");
                REQUIRE(f.run_until([&] { return c.saw("finish") || c.client_failed; }));
                finished = c.saw("finish");
            }
            // Whatever happened, the client leaves.
            c.client.next_layer().close();
            INFO("failing operation " << n);
            REQUIRE(f.run_until([&] { return c.session.expired(); }));
        }
        INFO("failing operation " << n);
        CHECK(f.metrics.connections.load() == 0);
        // The admission ticket went with the session: this user may connect
        // again (per-user limit 64 would be reached long before n = 200).
        CHECK(std::holds_alternative<detail::admission_ticket>(f.ctx->admission.admit(f.user_id)));
        if (finished)
            break;
    }
    INFO("the scenario never ran through without a failure");
    CHECK(n > 3);
    CHECK(n < limit);
    // Every generation that was acknowledged ran to the end in the database:
    // a socket failing never stops a generation.
    auto const unfinished = [&]
    {
        return f.reads.run_sync(
            [](storage::database& db)
            {
                auto& q = db.prepare("SELECT count(*) FROM messages WHERE role = 'assistant' "
                                     "AND status IN ('pending','generating')");
                q.executeStep();
                auto const n = q.getColumn(0).getInt64();
                q.reset();
                return n;
            });
    };
    auto const answers = [&]
    {
        return f.reads.run_sync(
            [](storage::database& db)
            {
                auto& q = db.prepare("SELECT count(*) FROM messages WHERE role = 'assistant'");
                q.executeStep();
                auto const n = q.getColumn(0).getInt64();
                q.reset();
                return n;
            });
    };
    REQUIRE(f.run_until([&] { return unfinished() == 0; }));
    CHECK(answers() >= 1);
}
