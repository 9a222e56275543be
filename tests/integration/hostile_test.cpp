// Hostile clients against the real binary (issue 20): each case is a finding
// that a client could exploit, and fails on the behaviour it fixes.
#include "files_client.hpp"
#include "server_process.hpp"
#include "ws_helpers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
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
