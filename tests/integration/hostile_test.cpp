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
    bob.send(json::object{{"type", "generate"}, {"id", "x"}, {"conversationId", conv}, {"content", "hi"}});
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
        alice.send(json::object{{"type", "generate"}, {"id", "a" + std::to_string(i)},
                                {"conversationId", conv}, {"content", "/tokens 5"}});
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
        json::object o{{"id", "chat-1"},
                       {"model", model},
                       {"messages", json::array{json::object{
                                        {"id", "u1"},
                                        {"role", "user"},
                                        {"parts", json::array{json::object{{"type", "text"},
                                                                           {"text", "hello"}}}}}}}};
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
    alice.send(json::object{{"type", "generate"}, {"id", "g"}, {"model", std::string(129, 'm')},
                            {"content", "hi"}});
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
    auto const refused_because = [](http_reply const& r, std::string_view why) {
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
    CHECK(std::string(c.stream().reason().reason.data(), c.stream().reason().reason.size()) == "token expired");
    CHECK(open_for < std::chrono::seconds(4)); // exp is 1-2 s after the upgrade
    REQUIRE(!text.empty());

    // The client comes back with a fresh token and picks up where it was.
    auto const offset = core::utf16_length(text);
    ws_client again(server.port(), "/ws?token=" + make_jwt("test-secret", "alice"));
    again.send(json::object{{"type", "subscribe"}, {"messageId", message_id}, {"fromOffset", offset}});
    auto const rest = read_until_finish(again, offset, message_id);
    CHECK(str(rest.finish.at("status")) == "complete");
    auto const m = again.query("getMessage", {{"messageId", message_id}});
    CHECK(text + rest.text == str(m.at("data").at("content")));
    CHECK(http_get(server.port(), "/metrics").body.find("\nchatstream_tokens_expired_total 1\n") !=
          std::string::npos);
    CHECK(server.stop(SIGTERM) == 0);
}
