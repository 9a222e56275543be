// End-to-end tests of issue 12: `mutate`, `watch`, auto-title, usage and
// limits, against the real binary over real WebSockets.
#include "files_client.hpp"
#include "server_process.hpp"
#include "ws_helpers.hpp"

#include "chatstream/storage/database.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <thread>

using namespace chatstream;
using namespace chatstream::test;

namespace
{

json::object mutate(std::string const& name, json::object args, std::string const& id = "m")
{
    return {{"type", "mutate"}, {"id", id}, {"name", name}, {"args", std::move(args)}};
}

// Sends a mutation and returns its reply (`result` or `error`), skipping
// other events (e.g. `changed` on a watching socket).
json::object call(ws_client& c, std::string const& name, json::object args,
                  std::string const& id = "m")
{
    c.send(mutate(name, std::move(args), id));
    for (;;)
    {
        auto e = c.read();
        if (e.contains("id") && e.at("id") == json::value(id))
            return e;
    }
}

// Like call(), for a socket that must hear nothing but the reply: the
// next event is it.
json::object call_alone(ws_client& c, std::string const& name, json::object args)
{
    c.send(mutate(name, std::move(args), "alone"));
    auto e = c.read();
    INFO(json::serialize(e));
    CHECK(str(e.at("type")) != "changed");
    CHECK((e.contains("id") && e.at("id") == json::value("alone")));
    return e;
}

std::string data_str(json::object const& reply, char const* key)
{
    return str(reply.at("data").at(key));
}

void watch(ws_client& c)
{
    c.send(json::object{{"type", "watch"}, {"id", "w"}});
    auto r = c.read_until("result");
    REQUIRE(r.at("data").at("watching").as_bool());
}

// The next `changed` event on @p c.
json::object next_change(ws_client& c)
{
    return c.read_until("changed");
}

// Proves @p c has nothing queued: the pong of a ping sent now comes first.
void expect_nothing_pending(ws_client& c)
{
    c.send(json::object{{"type", "ping"}, {"id", "quiet"}});
    auto e = c.read();
    CHECK(str(e.at("type")) == "pong");
}

/// chatstream_titles_requested_total from /metrics (-1 when absent).
long titles_requested(server_process const& server)
{
    auto const body = http_get(server.port(), "/metrics").body;
    static std::regex const line(R"(\nchatstream_titles_requested_total (\d+)\n)");
    std::smatch m;
    return std::regex_search(body, m, line) ? std::stol(m[1]) : -1;
}

std::int64_t count(storage::database& db, std::string const& sql)
{
    auto& q = db.prepare(sql);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

std::vector<std::string> message_ids(ws_client& c, std::string const& conversation_id)
{
    auto r = c.query("listMessages", {{"conversationId", conversation_id}});
    std::vector<std::string> ids;
    for (auto const& m : r.at("data").at("messages").as_array())
        ids.push_back(str(m.at("id")));
    return ids;
}

} // namespace

TEST_CASE("mutations check ownership and every socket of the user hears the changes",
          "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client a1(server.port(), "/ws?user=alice");
    ws_client a2(server.port(), "/ws?user=alice");
    ws_client b(server.port(), "/ws?user=bob");
    watch(a1);
    watch(a2);
    watch(b);

    auto created =
        call(a1, "createConversation", {{"title", "Plans"}, {"systemPrompt", "Be brief"}});
    REQUIRE(str(created.at("type")) == "result");
    auto const conversation = data_str(created, "id");
    CHECK(data_str(created, "title") == "Plans");
    CHECK(data_str(created, "systemPrompt") == "Be brief");
    for (auto* c : {&a1, &a2})
    {
        auto e = next_change(*c);
        CHECK(str(e.at("entity")) == "conversation");
        CHECK(str(e.at("op")) == "insert");
        CHECK(str(e.at("id")) == conversation);
        CHECK(str(e.at("data").at("title")) == "Plans");
    }

    // Only the given fields change, and only they travel.
    auto updated = call(a2, "updateConversation",
                        {{"conversationId", conversation}, {"pinned", true}, {"title", "Trip"}});
    REQUIRE(str(updated.at("type")) == "result");
    CHECK(data_str(updated, "title") == "Trip");
    CHECK(updated.at("data").at("pinned").as_bool());
    CHECK_FALSE(updated.at("data").at("starred").as_bool());
    CHECK(data_str(updated, "systemPrompt") == "Be brief");
    for (auto* c : {&a1, &a2})
    {
        auto e = next_change(*c);
        CHECK(str(e.at("op")) == "update");
        auto const& d = e.at("data").as_object();
        CHECK(str(d.at("title")) == "Trip");
        CHECK(d.at("pinned").as_bool());
        CHECK_FALSE(d.contains("starred"));
        CHECK_FALSE(d.contains("systemPrompt"));
    }
    // null clears a nullable field.
    auto cleared = call(a1, "updateConversation",
                        {{"conversationId", conversation}, {"systemPrompt", nullptr}});
    CHECK(cleared.at("data").at("systemPrompt").is_null());
    for (auto* c : {&a1, &a2})
        CHECK(next_change(*c).at("data").at("systemPrompt").is_null());

    // A generation in it: inserts and status changes reach both tabs.
    a1.send(json::object{
        {"type", "generate"}, {"conversationId", conversation}, {"content", "hello /tokens 5"}});
    auto const r = read_generation(a1);
    auto const answer = str(r.ack.at("messageId"));
    std::set<std::string> seen;
    for (;;)
    {
        auto e = next_change(a2);
        seen.insert(str(e.at("entity")) + ":" + str(e.at("op")) + ":" +
                    (e.contains("data") && e.at("data").as_object().contains("status")
                         ? str(e.at("data").at("status"))
                         : ""));
        if (str(e.at("id")) == answer && e.at("data").as_object().contains("status") &&
            str(e.at("data").at("status")) == "complete")
            break;
    }
    CHECK(seen.count("message:insert:complete")); // the user message
    CHECK(seen.count("message:insert:pending"));  // the answer
    CHECK(seen.count("message:update:generating"));
    CHECK(seen.count("conversation:update:")); // messageCount

    // Bob can touch none of it, and none of it reached him.
    expect_nothing_pending(b);
    for (auto const& [name, args] : std::vector<std::pair<std::string, json::object>>{
             {"updateConversation", {{"conversationId", conversation}, {"title", "mine"}}},
             {"deleteConversation", {{"conversationId", conversation}}},
             {"deleteMessage", {{"messageId", answer}}},
             {"regenerate", {{"messageId", answer}}},
             {"retry", {{"messageId", answer}}},
             {"branch", {{"messageId", answer}}}})
    {
        INFO(name);
        auto e = call_alone(b, name, args);
        CHECK(str(e.at("type")) == "error");
        CHECK(str(e.at("code")) == "not_found");
    }
    expect_nothing_pending(b);

    auto deleted = call(a1, "deleteConversation", {{"conversationId", conversation}});
    REQUIRE(str(deleted.at("type")) == "result");
    for (;;)
    {
        auto e = next_change(a2);
        if (str(e.at("op")) == "delete")
        {
            CHECK(str(e.at("entity")) == "conversation");
            CHECK(str(e.at("id")) == conversation);
            break;
        }
    }
    expect_nothing_pending(b);
}

TEST_CASE("deleting messages and conversations leaves no orphans and keeps message_count",
          "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    auto const notes = upload_ok(server.port(), "alice", "notes.txt", "text/plain", "twelve bytes");
    json::array attachments{json::object{{"type", "file"},
                                         {"name", "notes.txt"},
                                         {"storageId", notes},
                                         {"mimeType", "text/plain"},
                                         {"size", 12}}};
    c.send(json::object{{"type", "generate"},
                        {"content", R"(/tool calculator {"expression":"6*7"})"},
                        {"attachments", attachments}});
    auto const first = read_generation(c);
    auto const conversation = str(first.ack.at("conversationId"));
    c.send(json::object{
        {"type", "generate"}, {"conversationId", conversation}, {"content", "/tokens 3"}});
    read_generation(c);
    REQUIRE(message_ids(c, conversation).size() == 4);

    // The tool-calling answer goes, its tool call with it.
    auto e = call(c, "deleteMessage", {{"messageId", str(first.ack.at("messageId"))}});
    REQUIRE(str(e.at("type")) == "result");
    // The user message with the attachment goes, the attachment with it.
    e = call(c, "deleteMessage", {{"messageId", str(first.ack.at("userMessageId"))}});
    REQUIRE(str(e.at("type")) == "result");
    auto const conv = c.query("listConversations", json::object{});
    CHECK(conv.at("data").at("conversations").at(0).at("messageCount").as_int64() == 2);
    CHECK(message_ids(c, conversation).size() == 2);
    {
        storage::database db(dir.file("chat.db"), storage::open_mode::read_only);
        CHECK(count(db, "SELECT count(*) FROM tool_calls") == 0);
        CHECK(count(db, "SELECT count(*) FROM attachments") == 0);
    }
    e = call(c, "deleteMessage", {{"messageId", str(first.ack.at("messageId"))}});
    CHECK(str(e.at("code")) == "not_found");

    e = call(c, "deleteConversation", {{"conversationId", conversation}});
    REQUIRE(str(e.at("type")) == "result");
    storage::database db(dir.file("chat.db"), storage::open_mode::read_only);
    CHECK(count(db, "SELECT count(*) FROM conversations") == 0);
    CHECK(count(db, "SELECT count(*) FROM messages") == 0);
    server.stop();
    CHECK(std::system((std::string(CHATSTREAM_BINARY) + " check --db " + dir.file("chat.db") +
                       " >/dev/null")
                          .c_str()) == 0);
}

TEST_CASE("a running generation blocks conflicting mutations", "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    auto const s = start_generation(c, "/delay 20 /tokens 500", 1);
    auto const m = c.query("getMessage", {{"messageId", s.message_id}});
    auto const conversation = str(m.at("data").at("conversationId"));
    for (auto const& [name, args] : std::vector<std::pair<std::string, json::object>>{
             {"deleteConversation", {{"conversationId", conversation}}},
             {"deleteMessage", {{"messageId", s.message_id}}},
             {"regenerate", {{"messageId", s.message_id}}},
             {"branch", {{"messageId", s.message_id}}}})
    {
        INFO(name);
        auto e = call(c, name, args);
        CHECK(str(e.at("type")) == "error");
        CHECK(str(e.at("code")) == "conflict");
    }
    // Renaming does not conflict with a generation.
    auto e = call(c, "updateConversation", {{"conversationId", conversation}, {"starred", true}});
    CHECK(str(e.at("type")) == "result");

    c.send(json::object{{"type", "cancel"}, {"messageId", s.message_id}});
    c.read_until("finish", s.message_id);
    e = call(c, "deleteConversation", {{"conversationId", conversation}});
    CHECK(str(e.at("type")) == "result");
}

TEST_CASE("regenerate and retry replace the answer, the history is what the user sees",
          "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    c.send(generate("one two /tokens 4"));
    auto const a1 = read_generation(c);
    auto const conversation = str(a1.ack.at("conversationId"));
    c.send(json::object{{"type", "generate"},
                        {"conversationId", conversation},
                        {"content", "three four five /tokens 4"}});
    auto const a2 = read_generation(c);
    REQUIRE(message_ids(c, conversation).size() == 4);

    // Regenerating the first answer drops it and everything after it.
    c.send(mutate("regenerate", {{"messageId", str(a1.ack.at("messageId"))}}, "re"));
    auto const result = c.read_until("result");
    CHECK(str(result.at("id")) == "re");
    auto const& data = result.at("data").as_object();
    auto const fresh = str(data.at("messageId"));
    CHECK(str(data.at("replacedMessageId")) == str(a1.ack.at("messageId")));
    CHECK(data.at("removedMessageIds").as_array().size() == 3);
    auto const stream = read_until_finish(c, 0, fresh);
    CHECK(str(stream.finish.at("status")) == "complete");
    // The scripted provider counts the words of its context as input tokens:
    // only "one two /tokens 4" is left, so 4.
    CHECK(stream.finish.at("usage").at("inputTokens").as_int64() == 4);
    auto ids = message_ids(c, conversation);
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == str(a1.ack.at("userMessageId")));
    CHECK(ids[1] == fresh);
    CHECK(c.query("getMessage", {{"messageId", str(a2.ack.at("messageId"))}}).at("code") ==
          "not_found");

    // retry is only for answers that did not complete.
    auto e = call(c, "retry", {{"messageId", fresh}});
    CHECK(str(e.at("code")) == "conflict");
    e = call(c, "regenerate", {{"messageId", ids[0]}});
    CHECK(str(e.at("code")) == "bad_request");

    c.send(json::object{
        {"type", "generate"}, {"conversationId", conversation}, {"content", "/fail 2"}});
    auto const failed = read_generation(c);
    REQUIRE(str(failed.finish.at("status")) == "error");
    c.send(mutate("retry", {{"messageId", str(failed.ack.at("messageId"))}}, "rt"));
    auto const retried = c.read_until("result");
    auto const again = read_until_finish(c, 0, str(retried.at("data").at("messageId")));
    CHECK(str(again.finish.at("status")) == "error"); // the directive fails again
    CHECK(message_ids(c, conversation).size() == 4);
}

TEST_CASE("branch copies messages with their tool calls and attachments",
          "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    auto const cat = upload_ok(server.port(), "alice", "cat.png", "image/png", png_bytes(64, 48));
    json::array attachments{json::object{{"type", "image"},
                                         {"name", "cat.png"},
                                         {"storageId", cat},
                                         {"mimeType", "image/png"},
                                         {"size", 1234},
                                         {"metadata", {{"width", 64}, {"height", 48}}}}};
    c.send(json::object{{"type", "generate"},
                        {"content", R"(What is /tool calculator {"expression":"6*7"})"},
                        {"attachments", attachments}});
    auto const first = read_generation(c);
    auto const conversation = str(first.ack.at("conversationId"));
    c.send(json::object{
        {"type", "generate"}, {"conversationId", conversation}, {"content", "later /tokens 2"}});
    read_generation(c);

    auto e = call(c, "branch", {{"messageId", str(first.ack.at("messageId"))}});
    REQUIRE(str(e.at("type")) == "result");
    auto const copy = data_str(e, "id");
    CHECK(copy != conversation);
    CHECK(e.at("data").at("messageCount").as_int64() == 2);
    auto const ids = message_ids(c, copy);
    REQUIRE(ids.size() == 2);
    auto const original_answer =
        c.query("getMessage", {{"messageId", str(first.ack.at("messageId"))}}).at("data");
    auto const copied_answer = c.query("getMessage", {{"messageId", ids[1]}}).at("data");
    CHECK(copied_answer.at("content") == original_answer.at("content"));
    CHECK(copied_answer.at("status") == original_answer.at("status"));

    auto const tools_of = [&](std::string const& id) {
        return c.query("getToolCalls", {{"messageId", id}}).at("data").as_array();
    };
    auto const original_tools = tools_of(str(first.ack.at("messageId")));
    auto const copied_tools = tools_of(ids[1]);
    REQUIRE(copied_tools.size() == 1);
    REQUIRE(original_tools.size() == 1);
    for (auto const* key : {"id", "name", "arguments", "result", "textPosition"})
        CHECK(copied_tools[0].at(key) == original_tools[0].at(key));

    auto const copied_attachments =
        c.query("getAttachments", {{"messageId", ids[0]}}).at("data").as_array();
    REQUIRE(copied_attachments.size() == 1);
    CHECK(str(copied_attachments[0].at("storageId")) == cat);
    CHECK(copied_attachments[0].at("metadata").at("width").as_int64() == 64);

    // The branch is independent: generating in it uses its own history.
    c.send(json::object{{"type", "generate"}, {"conversationId", copy}, {"content", "go on"}});
    CHECK(str(read_generation(c).finish.at("status")) == "complete");
    CHECK(message_ids(c, conversation).size() == 4);
}

TEST_CASE("auto-title: the first answer of a New Chat names it, a rename wins",
          "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    ws_client c(server.port());
    ws_client tab(server.port());
    watch(tab);
    c.send(generate("Plan a weekend trip to Lisbon in May, please /tokens 3"));
    auto const r = read_generation(c);
    auto const conversation = str(r.ack.at("conversationId"));
    for (;;)
    {
        auto e = next_change(tab);
        if (str(e.at("entity")) == "conversation" && str(e.at("op")) == "update" &&
            e.at("data").as_object().contains("title"))
        {
            CHECK(str(e.at("id")) == conversation);
            CHECK(str(e.at("data").at("title")) == "Plan a weekend trip to Lisbon");
            break;
        }
    }
    auto list = c.query("listConversations", json::object{});
    CHECK(str(list.at("data").at("conversations").at(0).at("title")) ==
          "Plan a weekend trip to Lisbon");
    CHECK(titles_requested(server) == 1);

    // A conversation the user named keeps its name: no title request is
    // even made (counted before the finish is sent, so no wait is needed).
    auto created = call(c, "createConversation", {{"title", "Mine"}});
    auto const named = data_str(created, "id");
    c.send(json::object{{"type", "generate"}, {"conversationId", named}, {"content", "hi there"}});
    CHECK(str(read_generation(c).finish.at("status")) == "complete");
    CHECK(titles_requested(server) == 1);
    list = c.query("listConversations", json::object{});
    bool listed = false;
    for (auto const& conv : list.at("data").at("conversations").as_array())
        if (str(conv.at("id")) == named)
        {
            listed = true;
            CHECK(str(conv.at("title")) == "Mine");
        }
    CHECK(listed);
}

TEST_CASE("auto-title can be turned off: serve --no-auto-title leaves New Chat alone",
          "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--no-auto-title"});
    ws_client c(server.port());
    c.send(generate("Plan a weekend trip to Lisbon /tokens 3"));
    CHECK(str(read_generation(c).finish.at("status")) == "complete");
    // The decision is counted before `finish` is sent: 0 now means no title
    // request was made, and none will be (the test above sees 1 at this point).
    CHECK(titles_requested(server) == 0);
    auto list = c.query("listConversations", json::object{});
    CHECK(str(list.at("data").at("conversations").at(0).at("title")) == "New Chat");
}

TEST_CASE("usage is accounted per day and model, limits answer quota_exceeded",
          "[integration][lifecycle]")
{
    temp_dir dir;
    {
        server_process server(dir.file("chat.db"), {"--daily-message-limit", "2"});
        ws_client c(server.port());
        for (int i = 0; i < 2; ++i)
        {
            c.send(json::object{
                {"type", "generate"}, {"content", "/tokens 7"}, {"model", "gpt-4o-mini"}});
            CHECK(str(read_generation(c).finish.at("status")) == "complete");
        }
        c.send(generate("/tokens 7", "third"));
        auto e = c.read_until("error");
        CHECK(str(e.at("id")) == "third");
        CHECK(str(e.at("code")) == "quota_exceeded");
        CHECK(str(e.at("message")).find("daily message limit of 2 reached; it resets at ") == 0);
        CHECK(str(e.at("message")).find("T00:00:00Z") != std::string::npos);
        // Nothing of the refused request was written.
        CHECK(c.query("listConversations", json::object{})
                  .at("data")
                  .at("conversations")
                  .as_array()
                  .size() == 2);

        auto u = c.query("getUsage", json::object{});
        REQUIRE(str(u.at("type")) == "result");
        auto const& d = u.at("data").as_object();
        REQUIRE(d.at("days").as_array().size() == 1);
        auto const& row = d.at("days").at(0).as_object();
        CHECK(str(row.at("model")) == "gpt-4o-mini");
        CHECK(row.at("messageCount").as_int64() == 2);
        CHECK(row.at("outputTokens").as_int64() == 14);
        CHECK(row.at("cost").as_double() > 0);
        CHECK(d.at("limits").at("dailyMessages").as_int64() == 2);
        CHECK(d.at("limits").at("messagesToday").as_int64() == 2);
        CHECK(d.at("totals").at("messageCount").as_int64() == 2);

        // Another user has their own allowance.
        ws_client other(server.port(), "/ws?user=carol");
        other.send(generate("/tokens 1"));
        CHECK(str(read_generation(other).finish.at("status")) == "complete");
    }
    {
        // The monthly budget is a hard stop once spent (the first answer
        // costs more than a millionth of a dollar).
        server_process server(dir.file("chat.db"), {"--monthly-budget", "0.000001"});
        ws_client c(server.port(), "/ws?user=dave");
        c.send(json::object{{"type", "generate"}, {"content", "/tokens 50"}, {"model", "gpt-4o"}});
        CHECK(str(read_generation(c).finish.at("status")) == "complete");
        c.send(json::object{{"type", "generate"}, {"content", "/tokens 5"}, {"model", "gpt-4o"}});
        auto e = c.read_until("error");
        CHECK(str(e.at("code")) == "quota_exceeded");
        CHECK(str(e.at("message")).find("monthly budget") == 0);
        CHECK(str(e.at("message")).find("-01T00:00:00Z") != std::string::npos);
    }
}

TEST_CASE("a generate flood is rate limited per user", "[integration][lifecycle]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--rate-limit", "6", "--rate-burst", "3"});
    ws_client c(server.port());
    for (int i = 0; i < 5; ++i)
        c.send(generate("/tokens 1", "f" + std::to_string(i)));
    int acks = 0, limited = 0;
    while (acks + limited < 5)
    {
        auto e = c.read();
        if (str(e.at("type")) == "ack")
            ++acks;
        else if (str(e.at("type")) == "error")
        {
            CHECK(str(e.at("code")) == "rate_limited");
            CHECK(str(e.at("message")).find("at most 6 per minute") != std::string::npos);
            ++limited;
        }
    }
    CHECK(acks == 3);
    CHECK(limited == 2);
    // Another user is not affected.
    ws_client other(server.port(), "/ws?user=erin");
    other.send(generate("/tokens 1"));
    CHECK(str(read_generation(other).finish.at("status")) == "complete");
}
