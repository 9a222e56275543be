// Two `chatstream serve` nodes on one PostgreSQL database (issue 10):
// subscribe and cancel across nodes, restart recovery that leaves a live
// peer's generations alone, and a dead node's generations interrupted once
// its lease lapses. Runs only against PostgreSQL (CHATSTREAM_TEST_BACKEND).
#include "ws_helpers.hpp"

#include "chatstream/storage/database.hpp"

#include <catch2/catch.hpp>

namespace chatstream::test
{
namespace
{

std::string status_of(std::string const& db_location, std::string const& message_id)
{
    storage::database db(db_location, storage::open_mode::read_only);
    auto& q = db.prepare("SELECT status FROM messages WHERE id = ?");
    q.bind(1, message_id);
    std::string status = q.executeStep() ? q.getColumn(0).getString() : "missing";
    q.reset();
    return status;
}

std::string content_of(std::string const& db_location, std::string const& message_id)
{
    storage::database db(db_location, storage::open_mode::read_only);
    auto& q = db.prepare("SELECT content FROM messages WHERE id = ?");
    q.bind(1, message_id);
    std::string content = q.executeStep() ? q.getColumn(0).getString() : "";
    q.reset();
    return content;
}

std::vector<std::string> node_args(std::string const& name)
{
    return {"--migrate", "--node-id",    name, "--node-lease",
            "3",         "--rate-limit", "0",  "--no-auto-title"};
}

/// Nodes A and B on one fresh PostgreSQL schema; a client of A and one of B.
struct two_nodes
{
    temp_dir dir;
    std::string const db = postgres_db(dir);
    server_process a{db, node_args("node-a")};
    server_process b{db, node_args("node-b")};
    ws_client on_a{a.port()};
    ws_client on_b{b.port()};

    static std::string postgres_db(temp_dir& dir)
    {
        REQUIRE(testing_postgres());
        return dir.db("cluster");
    }
};

} // namespace

TEST_CASE_METHOD(two_nodes,
                 "cross-node subscribe: node B replays from fromOffset, then follows node A live",
                 "[cluster]")
{
    // A tab of the same user on node B watches: it hears node A's changes.
    ws_client watcher(b.port());
    watcher.send(json::object{{"type", "watch"}, {"id", "w"}});
    watcher.read_until("result");

    auto const gen = start_generation(on_a, "/tokens 300 /delay 5", 40);
    auto const from =
        core::utf16_length(gen.text) - 7; // somewhere already flushed or not: both must work
    auto const created = watcher.read_until("changed");
    CHECK(str(created.at("entity")) == "conversation");
    CHECK(str(created.at("op")) == "insert");

    on_b.send(json::object{
        {"type", "subscribe"}, {"id", "s"}, {"messageId", gen.message_id}, {"fromOffset", from}});
    auto const start = on_b.read_until("start", gen.message_id);
    CHECK(str(start.at("messageId")) == gen.message_id);
    auto const followed = read_until_finish(on_b, from, gen.message_id);
    CHECK(str(followed.finish.at("status")) == "complete");
    CHECK(followed.deltas > 1); // live deltas, not one replay at the end

    auto const original = read_until_finish(on_a, {}, gen.message_id);
    CHECK(str(original.finish.at("status")) == "complete");
    auto const stored = content_of(db, gen.message_id);
    auto const from_byte = core::utf8_offset_of_utf16(stored, from);
    CHECK(followed.text == stored.substr(from_byte)); // exactly the missing text, once
    CHECK(gen.text + original.text == stored);

    // A finished message replays the same way from either node.
    on_b.send(json::object{
        {"type", "subscribe"}, {"id", "s2"}, {"messageId", gen.message_id}, {"fromOffset", 0}});
    on_b.read_until("start", gen.message_id);
    CHECK(read_until_finish(on_b, 0, gen.message_id).text == stored);

    // Another user cannot follow it from node B.
    ws_client bob(b.port(), "/ws?user=bob");
    bob.send(json::object{{"type", "subscribe"}, {"id", "x"}, {"messageId", gen.message_id}});
    auto const refused = bob.read_until("error");
    CHECK(str(refused.at("code")) == "not_found");
}

TEST_CASE_METHOD(two_nodes,
                 "cross-node cancel: cancel on node B stops the generation running on node A",
                 "[cluster]")
{
    auto const gen = start_generation(on_a, "/tokens 5000 /delay 5", 10);
    on_b.send(json::object{{"type", "cancel"}, {"id", "c"}, {"messageId", gen.message_id}});
    auto const finish_b = on_b.read_until("finish", gen.message_id);
    CHECK(str(finish_b.at("status")) == "stopped");
    auto const finish_a = read_until_finish(on_a, {}, gen.message_id).finish;
    CHECK(str(finish_a.at("status")) == "stopped");
    CHECK(status_of(db, gen.message_id) == "stopped");

    // Now it is finished: a second cancel is a conflict, on either node.
    on_b.send(json::object{{"type", "cancel"}, {"id", "c2"}, {"messageId", gen.message_id}});
    CHECK(str(on_b.read_until("error").at("code")) == "conflict");

    // A second generation in the same conversation, while one runs on A, is
    // refused on B too.
    auto const running = start_generation(on_a, "/tokens 5000 /delay 5", 5);
    storage::database reader(db, storage::open_mode::read_only);
    auto& q = reader.prepare("SELECT conversation_id FROM messages WHERE id = ?");
    q.bind(1, running.message_id);
    REQUIRE(q.executeStep());
    auto const conversation_id = q.getColumn(0).getString();
    q.reset();
    on_b.send(json::object{{"type", "generate"},
                           {"id", "g2"},
                           {"conversationId", conversation_id},
                           {"content", "hi"}});
    auto const conflict = on_b.read_until("error");
    CHECK(str(conflict.at("code")) == "conflict");
    // ...and so is deleting that conversation from B.
    on_b.send(json::object{{"type", "mutate"},
                           {"id", "d"},
                           {"name", "deleteConversation"},
                           {"args", {{"conversationId", conversation_id}}}});
    CHECK(str(on_b.read_until("error").at("code")) == "conflict");
    on_a.send(json::object{{"type", "cancel"}, {"id", "c3"}, {"messageId", running.message_id}});
    read_until_finish(on_a, {}, running.message_id);
}

TEST_CASE_METHOD(
    two_nodes,
    "node leases: a restarting peer leaves live generations alone, a dead node's are interrupted",
    "[cluster]")
{
    auto const gen = start_generation(on_a, "/tokens 100000 /delay 5", 10);
    b.restart(); // its startup recovery must not touch node A's generation
    CHECK(status_of(db, gen.message_id) == "generating");
    on_a.send(json::object{{"type", "cancel"}, {"id", "c"}, {"messageId", gen.message_id}});
    CHECK(str(read_until_finish(on_a, {}, gen.message_id).finish.at("status")) == "stopped");

    // Node A dies mid-generation; a follower on B hears `interrupted` once
    // A's 3 s lease lapses and B's sweep runs.
    auto const doomed = start_generation(on_a, "/tokens 100000 /delay 5", 10);
    ws_client follower(b.port()); // B restarted: on_b's socket is gone
    follower.send(
        json::object{{"type", "subscribe"}, {"id", "s"}, {"messageId", doomed.message_id}});
    follower.read_until("start", doomed.message_id);
    auto const first = follower.read_until("text-delta", doomed.message_id); // B follows live text
    CHECK(first.at("offset").as_int64() == 0);
    auto const killed_at = std::chrono::steady_clock::now();
    a.stop(SIGKILL);
    auto const rest =
        read_until_finish(follower, core::utf16_length(str(first.at("delta"))), doomed.message_id);
    auto const took = std::chrono::steady_clock::now() - killed_at;
    CHECK(str(rest.finish.at("status")) == "interrupted");
    CHECK(took < std::chrono::seconds(8));
    CHECK(status_of(db, doomed.message_id) == "interrupted");
    // What B relayed is exactly the text kept in the row.
    CHECK(str(first.at("delta")) + rest.text == content_of(db, doomed.message_id));
}

TEST_CASE_METHOD(two_nodes,
                 "cross-node subscribe follows reasoning like text: one block, then the answer",
                 "[cluster][reasoning]")
{
    on_a.send(generate("/think 200 /tokens 100 /delay 3"));
    auto const id = str(on_a.read_until("ack").at("messageId"));
    on_a.read_until("reasoning-delta", id); // node A is thinking
    on_b.send(json::object{{"type", "subscribe"}, {"id", "s"}, {"messageId", id}});
    on_b.read_until("start", id);
    auto const followed = read_until_finish(on_b, 0, id, 0); // both offsets contiguous from 0
    CHECK(str(followed.finish.at("status")) == "complete");
    CHECK(followed.finish.at("usage").at("reasoningTokens").as_int64() == 200);
    std::vector<std::string> shape;
    for (auto const& e : followed.events)
    {
        auto const t = str(e.at("type"));
        if (shape.empty() || shape.back() != t)
            shape.push_back(t);
    }
    CHECK(shape == std::vector<std::string>{"reasoning-start", "reasoning-delta", "reasoning-end",
                                            "text-delta", "finish"});
    CHECK(followed.reasoning_deltas > 1); // followed live, not replayed at the end
    auto const original = read_until_finish(on_a, {}, id);
    storage::database store(db, storage::open_mode::read_only);
    auto& q = store.prepare("SELECT reasoning, content FROM messages WHERE id = ?");
    q.bind(1, id);
    REQUIRE(q.executeStep());
    CHECK(followed.reasoning == q.getColumn(0).getString());
    CHECK(followed.text == q.getColumn(1).getString());
    q.reset();
}

} // namespace chatstream::test
