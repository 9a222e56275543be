// Hostile clients against the real binary (issue 20): each case is a finding
// that a client could exploit, and fails on the behaviour it fixes.
#include "files_client.hpp"
#include "server_process.hpp"
#include "ws_helpers.hpp"

#include "chatstream/core/utf16.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace chatstream;
using namespace chatstream::test;

TEST_CASE("a foreign generate answers not_found and never blocks the owner",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--rate-limit", "0"});
    ws_client alice(server.port(), "/ws?user=alice");
    alice.send(generate("/delay 5 /tokens 200"));
    auto const ack = alice.read_until("ack");
    auto const conv = ack.at("conversationId");

    // While alice's generation runs, bob's generate into her conversation
    // must not learn that it exists (before: `conflict`, "already running").
    ws_client bob(server.port(), "/ws?user=bob");
    bob.send(json::object{
        {"type", "generate"}, {"id", "x"}, {"conversationId", conv}, {"content", "hi"}});
    auto const refused = bob.read_until("error");
    CHECK(str(refused.at("code")) == "not_found");
    CHECK(str(refused.at("id")) == "x");
    read_until_finish(alice, {}, str(ack.at("messageId")));

    // Bob floods her conversation id while she keeps generating in it: every
    // one of her generates runs (before: the flood held the reservation, and
    // 8 of her 18 were refused with `conflict`).
    std::atomic<bool> stop{false};
    std::atomic<int> bob_not_found{0}, bob_other{0};
    std::thread flood(
        [&]
        {
            ws_client b(server.port(), "/ws?user=bob");
            for (int i = 0; !stop; ++i)
            {
                b.send(json::object{{"type", "generate"},
                                    {"id", "f" + std::to_string(i)},
                                    {"conversationId", conv},
                                    {"content", "hi"}});
                auto const e = b.read();
                (str(e.at("type")) == "error" && str(e.at("code")) == "not_found" ? bob_not_found
                                                                                  : bob_other)++;
            }
        });
    int refused_for_alice = 0;
    for (int i = 0; i < 12; ++i)
    {
        alice.send(json::object{{"type", "generate"},
                                {"id", "a" + std::to_string(i)},
                                {"conversationId", conv},
                                {"content", "/tokens 5"}});
        auto e = alice.read();
        while (str(e.at("type")) != "ack" && str(e.at("type")) != "error")
            e = alice.read();
        if (str(e.at("type")) == "error")
        {
            ++refused_for_alice;
            continue;
        }
        read_until_finish(alice, {}, str(e.at("messageId")));
    }
    stop = true;
    flood.join();
    CHECK(refused_for_alice == 0);
    CHECK(bob_not_found > 0);
    CHECK(bob_other == 0);
    CHECK(server.stop(SIGTERM) == 0);
}

TEST_CASE("/api/chat caps the model name like the WebSocket path (128 bytes)",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto body = [](std::string const& model)
    {
        json::object o{
            {"id", "chat-1"},
            {"model", model},
            {"messages",
             json::array{json::object{
                 {"id", "u1"},
                 {"role", "user"},
                 {"parts", json::array{json::object{{"type", "text"}, {"text", "hello"}}}}}}}};
        return json::serialize(o);
    };
    std::vector<std::pair<std::string, std::string>> const headers = {
        {"Content-Type", "application/json"}};
    // Before: a 100 KB model was stored in messages.model and the usage key.
    auto const long_model = http_request(server.port(), http::verb::post, "/api/chat?user=alice",
                                         headers, body(std::string(100'000, 'm')));
    CHECK(long_model.status == 400);
    CHECK(long_model.body.find("longer than 128") != std::string::npos);
    ws_client alice(server.port(), "/ws?user=alice");
    CHECK(alice.query("listConversations", {}).at("data").at("conversations").as_array().empty());
    // The same cap on the WebSocket.
    alice.send(json::object{
        {"type", "generate"}, {"id", "g"}, {"model", std::string(129, 'm')}, {"content", "hi"}});
    auto const e = alice.read_until("error");
    CHECK(str(e.at("code")) == "bad_request");
    // 128 bytes is fine on both.
    auto const ok = http_request(server.port(), http::verb::post, "/api/chat?user=alice", headers,
                                 body(std::string(128, 'm')));
    CHECK(ok.status == 200);
    CHECK(server.stop(SIGTERM) == 0);
}

TEST_CASE("JWT: `exp` is required and must be an integer, unless --jwt-allow-no-exp",
          "[integration][hostile]")
{
    temp_dir dir;
    std::vector<std::string> const env{"CS_TEST_SECRET=test-secret"};
    auto const no_exp = make_jwt_with_claims("test-secret", R"({"sub":"alice"})");
    // libjwt's integer accessor reads a string or a real as 0: such an `exp`
    // looked expired and such an `nbf` looked valid (`"nbf":"9999999999"`
    // was accepted). Each must be refused as what it is.
    auto const string_exp =
        make_jwt_with_claims("test-secret", R"({"sub":"alice","exp":"99999999999"})");
    auto const fractional_exp =
        make_jwt_with_claims("test-secret", R"({"sub":"alice","exp":99999999999.5})");
    auto const string_nbf = make_jwt_with_claims(
        "test-secret", R"({"sub":"alice","exp":99999999999,"nbf":"99999999999"})");
    auto const refused_because = [](http_reply const& r, std::string_view why)
    {
        CHECK(r.status == 401);
        CHECK(r.body.find(why) != std::string::npos);
    };
    {
        server_process strict(dir.file("strict.db"), {"--jwt-secret-env", "CS_TEST_SECRET"}, env);
        auto const r = http_get(strict.port(), "/ws", true, "Bearer " + no_exp);
        CHECK(r.status == 401); // before: 101, a token valid forever
        CHECK(r.body.find("no 'exp'") != std::string::npos);
        CHECK(http_get(strict.port(), "/ws?token=" + no_exp, true).status == 401);
        refused_because(http_get(strict.port(), "/ws", true, "Bearer " + string_exp),
                        "'exp' must be an integer");
        refused_because(http_get(strict.port(), "/ws", true, "Bearer " + fractional_exp),
                        "'exp' must be an integer");
        refused_because(http_get(strict.port(), "/ws", true, "Bearer " + string_nbf),
                        "'nbf' must be an integer");
        CHECK(http_get(strict.port(), "/ws", true, "Bearer " + make_jwt("test-secret", "alice"))
                  .status == 101);
        CHECK(strict.stop(SIGTERM) == 0);
    }
    server_process lenient(dir.file("lenient.db"),
                           {"--jwt-secret-env", "CS_TEST_SECRET", "--jwt-allow-no-exp"}, env);
    CHECK(http_get(lenient.port(), "/ws", true, "Bearer " + no_exp).status == 101);
    CHECK(http_get(lenient.port(), "/ws", true, "Bearer " + string_exp).status == 401);
    CHECK(lenient.stop(SIGTERM) == 0);
}

TEST_CASE("a WebSocket closes with 4401 when its token expires, and a new token resumes the stream",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--jwt-secret-env", "CS_TEST_SECRET"},
                          {"CS_TEST_SECRET=test-secret"});
    ws_client c(server.port(), "/ws?token=" + make_jwt("test-secret", "alice", 2));
    auto const opened = std::chrono::steady_clock::now();
    c.send(generate("/tokens 2500 /delay 2")); // ~5 s: it outlives the token
    auto const message_id = str(c.read_until("ack").at("messageId"));
    std::string text;
    bool finished = false;
    try
    {
        for (;;)
        {
            auto const e = c.read();
            if (str(e.at("type")) == "finish")
                finished = true;
            if (str(e.at("type")) != "text-delta")
                continue;
            REQUIRE(e.at("offset").to_number<std::uint64_t>() == core::utf16_length(text));
            text += str(e.at("delta"));
        }
    }
    catch (boost::system::system_error const& e)
    {
        CHECK(e.code() == websocket::error::closed);
    }
    auto const open_for = std::chrono::steady_clock::now() - opened;
    CHECK_FALSE(finished);
    CHECK(static_cast<unsigned>(c.stream().reason().code) == 4401); // before: never closed
    CHECK(std::string(c.stream().reason().reason.data(), c.stream().reason().reason.size()) ==
          "token expired");
    CHECK(open_for < std::chrono::seconds(4)); // exp is 1-2 s after the upgrade
    REQUIRE(!text.empty());

    // The client comes back with a fresh token and picks up where it was.
    auto const offset = core::utf16_length(text);
    ws_client again(server.port(), "/ws?token=" + make_jwt("test-secret", "alice"));
    again.send(
        json::object{{"type", "subscribe"}, {"messageId", message_id}, {"fromOffset", offset}});
    auto const rest = read_until_finish(again, offset, message_id);
    CHECK(str(rest.finish.at("status")) == "complete");
    auto const m = again.query("getMessage", {{"messageId", message_id}});
    CHECK(text + rest.text == str(m.at("data").at("content")));
    CHECK(http_get(server.port(), "/metrics").body.find("\nchatstream_tokens_expired_total 1\n") !=
          std::string::npos);
    CHECK(server.stop(SIGTERM) == 0);
}

namespace
{

struct raw_reply
{
    unsigned status = 0;
    std::string body;
    http::fields headers;
    bool closed = false; ///< the server closed the connection after answering
};

/// Sends @p request bytes as they are and reads one response, then whether
/// the connection is closed (EOF within 3 s). Asynchronous, because
/// tcp_stream's deadlines apply only to async operations: a synchronous read
/// on an upgraded socket would wait forever.
raw_reply raw_http(unsigned short port, std::string const& request)
{
    net::io_context ioc;
    beast::tcp_stream s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    beast::flat_buffer b;
    http::response<http::string_body> res;
    raw_reply r;
    char c = 0;
    s.expires_after(std::chrono::seconds(5));
    net::async_write(s, net::buffer(request),
                     [&](beast::error_code ec, std::size_t)
                     {
                         if (ec)
                             return;
                         http::async_read(
                             s, b, res,
                             [&](beast::error_code ec, std::size_t)
                             {
                                 if (ec)
                                     return;
                                 r = raw_reply{res.result_int(), res.body(), res.base(), false};
                                 if (r.status == 101)
                                     return; // upgraded: open by definition
                                 s.expires_after(std::chrono::seconds(3));
                                 // Anything after the answer, or a timeout, means the connection
                                 // stayed open.
                                 s.async_read_some(net::buffer(&c, 1),
                                                   [&](beast::error_code ec, std::size_t) {
                                                       r.closed =
                                                           ec == net::error::eof ||
                                                           ec == net::error::connection_reset;
                                                   });
                             });
                     });
    ioc.run();
    return r;
}

std::string upgrade_request(unsigned short port, std::string const& target,
                            std::string const& extra_headers)
{
    return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\n"
           "Connection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n" +
           extra_headers + "\r\n";
}

} // namespace

TEST_CASE("HTTP framing: unsupported transfer codings, smuggling shapes and big headers get a "
          "status, then the connection closes",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto const port = server.port();
    SECTION("Transfer-Encoding: gzip is 501 (before: the body was read as empty and its bytes "
            "as the next request)")
    {
        auto const r = raw_http(port, "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Transfer-Encoding: gzip\r\n\r\n"
                                      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(r.status == 501);
        CHECK(r.body.find("transfer coding") != std::string::npos);
        CHECK(r.closed);
    }
    SECTION("Transfer-Encoding and Content-Length together are 400")
    {
        auto const r = raw_http(port, "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "0\r\n\r\n");
        CHECK(r.status == 400);
        CHECK(r.closed);
    }
    SECTION("two different Content-Lengths are 400")
    {
        auto const r = raw_http(port, "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}");
        CHECK(r.status == 400);
        CHECK(r.closed);
    }
    SECTION("a header over 8 KiB is 431")
    {
        auto const r = raw_http(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                                          std::string(9000, 'a') + "\r\n\r\n");
        CHECK(r.status == 431);
        CHECK(r.closed);
    }
    SECTION("chunked alone is still accepted")
    {
        auto const r = raw_http(port, "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                      "2\r\n{}\r\n0\r\n\r\n");
        INFO(r.body);
        CHECK(r.status == 400); // parsed: an empty chat request, refused for its content
        CHECK(r.body.find("\"bad_request\"") != std::string::npos);
    }
    CHECK(server.stop(SIGTERM) == 0);
}

TEST_CASE("Origin: /ws and /api take only the own origin and --allowed-origins and never "
          "answer with wildcard CORS",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--allowed-origins", "https://app.example"});
    auto const port = server.port();
    auto const self = "http://127.0.0.1:" + std::to_string(port);
    // Before: any page could open /ws in dev mode and read the dev user's data.
    auto const evil =
        raw_http(port, upgrade_request(port, "/ws", "Origin: https://evil.example\r\n"));
    CHECK(evil.status == 403);
    CHECK(evil.body.find("\"forbidden\"") != std::string::npos);
    CHECK(raw_http(port, upgrade_request(port, "/ws", "Origin: null\r\n")).status == 403);
    CHECK(raw_http(port, upgrade_request(port, "/ws", "Origin: " + self + "\r\n")).status == 101);
    CHECK(raw_http(port, upgrade_request(port, "/ws", "Origin: https://app.example\r\n")).status ==
          101);
    CHECK(raw_http(port, upgrade_request(port, "/ws", "")).status == 101); // not a browser
    // DNS rebinding: evil.example resolved to 127.0.0.1, Origin and Host agree.
    auto const rebinding = "GET /ws HTTP/1.1\r\nHost: evil.example:" + std::to_string(port) +
                           "\r\nOrigin: http://evil.example:" + std::to_string(port) +
                           "\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK(raw_http(port, rebinding).status == 403);

    // /api/chat: a foreign page is refused, an allowed one gets its own origin back.
    auto const chat = [&](std::string const& origin)
    {
        std::string const body = R"({"id":"c1","messages":[]})";
        return raw_http(port, "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: " + origin +
                                  "\r\nContent-Type: application/json\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                                  body);
    };
    CHECK(chat("https://evil.example").status == 403);
    auto const allowed = chat("https://app.example");
    CHECK(allowed.status != 403);
    CHECK(allowed.headers[http::field::access_control_allow_origin] == "https://app.example");
    auto const preflight = raw_http(port, "OPTIONS /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          "Origin: https://evil.example\r\n"
                                          "Access-Control-Request-Method: POST\r\n\r\n");
    CHECK(preflight.status == 403);
    CHECK(preflight.headers[http::field::access_control_allow_origin].empty());
    CHECK(http_get(port, "/metrics").body.find("chatstream_origins_refused_total 5") !=
          std::string::npos);
    CHECK(server.stop(SIGTERM) == 0);
}

TEST_CASE("Admission: --max-connections and --max-connections-per-user refuse with 503 JSON "
          "before the upgrade",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"),
                          {"--max-connections", "4", "--max-connections-per-user", "2"});
    auto const port = server.port();
    std::vector<std::unique_ptr<ws_client>> open;
    open.push_back(std::make_unique<ws_client>(port, "/ws?user=a"));
    open.push_back(std::make_unique<ws_client>(port, "/ws?user=a"));
    auto const third = raw_http(port, upgrade_request(port, "/ws?user=a", ""));
    CHECK(third.status == 503);
    CHECK(third.body.find("\"overloaded\"") != std::string::npos);
    CHECK(third.body.find("--max-connections-per-user") != std::string::npos);
    CHECK(third.headers[http::field::retry_after] == "1");
    open.push_back(std::make_unique<ws_client>(port, "/ws?user=b"));
    open.push_back(std::make_unique<ws_client>(port, "/ws?user=c"));
    auto const fifth = raw_http(port, upgrade_request(port, "/ws?user=d", ""));
    CHECK(fifth.status == 503);
    CHECK(fifth.body.find("--max-connections)") != std::string::npos);
    // An admitted connection still works, and a closed one frees its place.
    open[0]->send(generate("/tokens 5"));
    CHECK(str(read_generation(*open[0]).finish.at("status")) == "complete");
    open.erase(open.begin());
    bool admitted = false;
    int refused_again = 0; // tries before the server saw the close (a loaded machine)
    for (int i = 0; i < 100 && !admitted; ++i)
    {
        admitted = raw_http(port, upgrade_request(port, "/ws?user=d", "")).status == 101;
        if (!admitted)
        {
            ++refused_again;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    CHECK(admitted);
    auto const m = http_get(port, "/metrics").body;
    CHECK(m.find("chatstream_connections_refused_total{reason=\"user\"} 1") != std::string::npos);
    CHECK(m.find("chatstream_connections_refused_total{reason=\"server\"} " +
                 std::to_string(1 + refused_again)) != std::string::npos);
    open.clear();
    CHECK(server.stop(SIGTERM) == 0);
}

TEST_CASE("metrics: --metrics-token-env puts /metrics behind a bearer token",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--metrics-token-env", "CS_METRICS"},
                          {"CS_METRICS=scrape-me"});
    CHECK(http_get(server.port(), "/metrics").status == 401);
    CHECK(http_get(server.port(), "/metrics", false, "Bearer scrape-mf").status == 401);
    auto const ok = http_get(server.port(), "/metrics", false, "Bearer scrape-me");
    CHECK(ok.status == 200);
    CHECK(ok.body.find("chatstream_connections") != std::string::npos);
    CHECK(http_get(server.port(), "/healthz").status == 200); // stays open
    CHECK(server.stop(SIGTERM) == 0);
}

TEST_CASE("mutations are rate-limited per user by --mutation-rate and --mutation-burst",
          "[integration][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--mutation-rate", "60", "--mutation-burst", "3"});
    ws_client a(server.port(), "/ws?user=a");
    auto const create = [](ws_client& c, std::string const& id)
    {
        c.send(json::object{{"type", "mutate"},
                            {"id", id},
                            {"name", "createConversation"},
                            {"args", json::object{{"title", "t"}}}});
        for (;;)
        {
            auto e = c.read();
            if (e.contains("id") && e.at("id") == json::value(id))
                return e;
        }
    };
    for (int i = 0; i < 3; ++i)
        CHECK(str(create(a, "m" + std::to_string(i)).at("type")) == "result");
    auto const limited = create(a, "m3"); // before: a 12,000-conversation burst went through
    CHECK(str(limited.at("type")) == "error");
    CHECK(str(limited.at("code")) == "rate_limited");
    ws_client b(server.port(), "/ws?user=b"); // another user has its own bucket
    CHECK(str(create(b, "n0").at("type")) == "result");
    CHECK(http_get(server.port(), "/metrics")
              .body.find("chatstream_mutations_rate_limited_total 1") != std::string::npos);
    CHECK(server.stop(SIGTERM) == 0);
}
