#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/error.hpp"
#include "rows.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::storage;

namespace
{

struct fixture
{
    test::temp_dir dir;
    database db{test::migrated_db(dir), open_mode::read_write};
    std::string alice = users::ensure(db, "alice");
    std::string bob = users::ensure(db, "bob");

    std::string conversation(std::string const& user)
    {
        return test::insert_conversation(db, user, core::now_ms()).id;
    }
    std::string message(std::string const& conv, std::string const& user,
                        std::string status = status::generating)
    {
        return test::insert_message(db, conv, user, status, core::now_ms()).id;
    }
    tool_call_row call(std::string const& msg, std::string const& conv, std::string const& id)
    {
        tool_call_row t;
        t.message_id = msg;
        t.conversation_id = conv;
        t.user_id = alice;
        t.tool_call_id = id;
        t.tool_name = "calculator";
        t.args = R"({"expression":"1+1"})";
        t.text_position = 5;
        t.timestamp = core::now_ms();
        return t;
    }
};

} // namespace

TEST_CASE_METHOD(fixture, "users::ensure is idempotent by external id", "[storage]")
{
    CHECK(users::ensure(db, "alice") == alice);
    CHECK(alice != bob);
}

TEST_CASE_METHOD(fixture, "tool call upsert keeps name and text_position once set",
                 "[storage][tool_calls]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    auto t = call(msg, conv, "call_1");
    tool_calls::upsert(db, t);

    auto again = t;
    again.tool_name = "other";
    again.text_position = 99;
    again.args = "{}"; // empty args never erase real ones
    again.result = R"({"value":2})";
    again.is_partial = false;
    tool_calls::upsert(db, again);

    auto rows = tool_calls::rows_for_message(db, msg);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].tool_name == "calculator");
    CHECK(rows[0].text_position == 5);
    CHECK(rows[0].args == R"({"expression":"1+1"})");
    CHECK(rows[0].result == R"({"value":2})");
    CHECK_FALSE(rows[0].is_partial);
}

TEST_CASE_METHOD(fixture, "finish is guarded: a terminal status is never overwritten",
                 "[storage][messages]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    messages::flush_partial(db, msg, "hel", core::now_ms(), core::now_ms());

    messages::completion stop{status::stopped, "hel"};
    stop.completed_at = core::now_ms();
    CHECK(messages::finish(db, msg, stop));

    messages::completion late{status::complete, "hello world"};
    late.completed_at = core::now_ms();
    CHECK_FALSE(messages::finish(db, msg, late));
    messages::flush_partial(db, msg, "hello", std::nullopt, core::now_ms()); // late flush: ignored

    auto m = messages::get(db, alice, msg).value();
    CHECK(m.status == status::stopped);
    CHECK(m.content == "hel");
    CHECK_FALSE(m.partial_content);
}

TEST_CASE_METHOD(fixture, "finish finalizes partial tool calls with an error result",
                 "[storage][tool_calls]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    tool_calls::upsert(db, call(msg, conv, "call_1"));
    messages::completion err{status::error, "partial"};
    err.error = "upstream failed";
    err.completed_at = core::now_ms();
    REQUIRE(messages::finish(db, msg, err));
    auto rows = tool_calls::rows_for_message(db, msg);
    REQUIRE(rows.size() == 1);
    CHECK_FALSE(rows[0].is_partial);
    CHECK(rows[0].result.value().find("\"success\":false") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "reads are scoped to the owner", "[storage][ownership]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice, status::complete);
    tool_calls::upsert(db, call(msg, conv, "call_1"));

    CHECK(conversations::get(db, alice, conv));
    CHECK_FALSE(conversations::get(db, bob, conv));
    CHECK(messages::get(db, alice, msg));
    CHECK_FALSE(messages::get(db, bob, msg));
    CHECK(tool_calls::list_for_message(db, alice, msg, true).size() == 1);
    CHECK(tool_calls::list_for_message(db, bob, msg, true).empty());
    CHECK(conversations::list(db, bob, {}).rows.empty());
    CHECK(messages::list(db, bob, conv, {}).rows.empty());
    CHECK_FALSE(conversations::remove(db, bob, conv));
    CHECK_FALSE(messages::remove(db, bob, msg));
}

TEST_CASE_METHOD(fixture, "getToolCalls hides partial calls unless asked", "[storage][tool_calls]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    tool_calls::upsert(db, call(msg, conv, "call_1"));
    CHECK(tool_calls::list_for_message(db, alice, msg, false).empty());
    auto all = tool_calls::list_for_message(db, alice, msg, true);
    REQUIRE(all.size() == 1);
    CHECK(all[0].is_partial);
    CHECK(all[0].name == "calculator");
    CHECK(all[0].arguments == R"({"expression":"1+1"})");
}

TEST_CASE_METHOD(fixture, "deleting a conversation cascades to every child row",
                 "[storage][cascade]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    tool_calls::upsert(db, call(msg, conv, "call_1"));
    attachment_row a;
    a.message_id = msg;
    a.conversation_id = conv;
    a.user_id = alice;
    a.type = "file";
    a.name = "doc.pdf";
    a.storage_id = "sha";
    a.mime_type = "application/pdf";
    a.size = 10;
    attachments::insert(db, a);
    REQUIRE(conversations::remove(db, alice, conv));
    auto count = [&](char const* table)
    {
        auto& q = db.prepare(std::string("SELECT count(*) FROM ") + table);
        q.executeStep();
        auto n = q.getColumn(0).getInt();
        q.reset();
        return n;
    };
    CHECK(count("messages") == 0);
    CHECK(count("tool_calls") == 0);
    CHECK(count("attachments") == 0);
}

TEST_CASE_METHOD(fixture, "deleteMessage keeps message_count right", "[storage][cascade]")
{
    auto conv = conversation(alice);
    auto m1 = message(conv, alice, status::complete);
    message(conv, alice, status::complete);
    CHECK(conversations::get(db, alice, conv)->message_count == 2);
    REQUIRE(messages::remove(db, alice, m1));
    CHECK(conversations::get(db, alice, conv)->message_count == 1);
}

TEST_CASE_METHOD(fixture, "listings paginate with keyset cursors", "[storage][pagination]")
{
    auto conv = conversation(alice);
    std::vector<std::string> ids;
    for (int i = 0; i < 7; ++i)
        ids.push_back(message(conv, alice, status::complete));
    page_request req;
    req.limit = 3;
    std::vector<std::string> seen;
    for (;;)
    {
        auto p = messages::list(db, alice, conv, req);
        for (auto& m : p.rows)
            seen.push_back(m.id);
        if (!p.next_cursor)
            break;
        req.cursor = p.next_cursor;
    }
    CHECK(seen == ids);
    req.cursor = "garbage";
    CHECK_THROWS_AS(messages::list(db, alice, conv, req), storage_error);
}

TEST_CASE_METHOD(fixture, "restart recovery interrupts unfinished messages", "[storage][recovery]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    messages::flush_partial(db, msg, "partial text", core::now_ms(), core::now_ms());
    tool_calls::upsert(db, call(msg, conv, "call_1"));
    auto done = message(conv, alice, status::complete);
    CHECK(messages::interrupt_unfinished(db, core::now_ms()) == 1);
    auto m = messages::get(db, alice, msg).value();
    CHECK(m.status == status::interrupted);
    CHECK(m.content == "partial text");
    CHECK_FALSE(tool_calls::rows_for_message(db, msg)[0].is_partial);
    CHECK(messages::get(db, alice, done)->status == status::complete);
}

#include "chatstream/storage/consistency.hpp"

TEST_CASE_METHOD(fixture, "check_consistency finds stuck tool calls and wrong counts",
                 "[storage][consistency]")
{
    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    tool_calls::upsert(db, call(msg, conv, "call_1"));
    CHECK(check_consistency(db, false).problems.empty());
    CHECK(check_consistency(db, true).problems.size() == 1); // unfinished while offline

    // Simulate the bug the old system had: a terminal message with an executing call.
    db.exec("UPDATE messages SET status = 'complete' WHERE id = '" + msg + "'");
    db.exec("UPDATE conversations SET message_count = 7");
    auto r = check_consistency(db, true);
    CHECK(r.problems.size() == 3);
    CHECK(r.tool_calls == 1);
}

#include "chatstream/core/json.hpp"

TEST_CASE_METHOD(fixture, "dual-write renders the legacy arrays alike on both backends",
                 "[storage][legacy]")
{
    // A database still carrying the legacy array columns (before cleanup).
    for (auto const* column : {"attachments", "tool_calls", "partial_tool_calls"})
        db.exec(std::string("ALTER TABLE messages ADD COLUMN ") + column + " TEXT");
    REQUIRE(has_legacy_columns(db));

    auto conv = conversation(alice);
    auto msg = message(conv, alice);
    auto t = call(msg, conv, "call_1");
    t.timestamp = 123;
    tool_calls::upsert(db, t);
    auto done = call(msg, conv, "call_2");
    done.timestamp = 124;
    done.text_position.reset();
    done.result = R"({"value":2})";
    done.is_partial = false;
    tool_calls::upsert(db, done);
    attachment_row a;
    a.message_id = msg;
    a.conversation_id = conv;
    a.user_id = alice;
    a.type = "file";
    a.name = "doc.pdf";
    a.storage_id = "sha";
    a.mime_type = "application/pdf";
    a.size = 10;
    a.metadata = R"({"pages":2})";
    attachments::insert(db, a);

    auto legacy = [&](char const* column)
    {
        auto& q = db.prepare(std::string("SELECT ") + column + " FROM messages WHERE id = ?");
        q.bind(1, msg);
        REQUIRE(q.executeStep());
        auto text = q.getColumn(0).getString();
        q.reset();
        // PostgreSQL's layout has spaces; the document must be the same.
        return core::canonical_json(text).value();
    };
    CHECK(
        legacy("tool_calls") ==
        R"([{"id":"call_2","name":"calculator","arguments":"{\"expression\":\"1+1\"}","result":"{\"value\":2}","timestamp":124,"textPosition":null}])");
    CHECK(
        legacy("partial_tool_calls") ==
        R"([{"id":"call_1","name":"calculator","arguments":"{\"expression\":\"1+1\"}","result":null,"timestamp":123,"textPosition":5}])");
    CHECK(
        legacy("attachments") ==
        R"([{"type":"file","name":"doc.pdf","storageId":"sha","mimeType":"application/pdf","size":10,"metadata":{"pages":2}}])");

    // Finishing moves the partial call over with its error result; none left partial.
    messages::completion err{status::error, ""};
    err.error = "upstream failed";
    err.completed_at = core::now_ms();
    REQUIRE(messages::finish(db, msg, err));
    CHECK(legacy("partial_tool_calls") == "[]");
    CHECK(
        legacy("tool_calls") ==
        R"([{"id":"call_1","name":"calculator","arguments":"{\"expression\":\"1+1\"}","result":"{\"success\":false,\"error\":\"generation error\"}","timestamp":123,"textPosition":5},)"
        R"({"id":"call_2","name":"calculator","arguments":"{\"expression\":\"1+1\"}","result":"{\"value\":2}","timestamp":124,"textPosition":null}])");
}

TEST_CASE_METHOD(fixture,
                 "messages::search folds case on both dialects, takes wildcards literally and "
                 "sees only the owner's finished messages",
                 "[storage][messages]")
{
    auto const conv = conversation(alice);
    auto const t = core::now_ms();
    auto const kyoto =
        test::insert_message(db, conv, alice, status::complete, t, "Trip to KYOTO in May").id;
    test::insert_message(db, conv, alice, status::complete, t + 1, "100% sure, no wildcard_here");
    test::insert_message(db, conv, alice, status::generating, t + 2, "kyoto, still generating");
    auto const excluded =
        test::insert_message(db, conv, alice, status::complete, t + 3, "kyoto excluded").id;
    test::insert_message(db, conv, alice, status::complete, t + 4, "cardXhold");
    test::insert_message(db, conversation(bob), bob, status::complete, t + 5, "bob's kyoto");

    auto const hits = messages::search(db, alice, excluded, "kyoto", 10);
    REQUIRE(hits.size() == 1); // PostgreSQL's LIKE did not fold case: 0 there
    CHECK(hits[0].message_id == kyoto);
    CHECK(hits[0].content == "Trip to KYOTO in May");
    CHECK(hits[0].conversation_id == conv);
    CHECK(messages::search(db, alice, excluded, "0%", 10).size() == 1);
    CHECK(messages::search(db, alice, excluded, "d_h", 10).size() == 1); // not "cardXhold"
    CHECK(messages::search(db, alice, excluded, "y%m", 10).empty());     // not "KYOTO in May"
    CHECK(messages::search(db, alice, excluded, "%", 10).size() == 1);
    CHECK(messages::search(db, bob, "", "KYOTO", 10).size() == 1);
    CHECK(messages::search(db, alice, excluded, "o", 1).size() == 1); // limit
}

TEST_CASE_METHOD(fixture,
                 "messages::read_bytes reads a byte range of content or reasoning on both dialects",
                 "[storage][messages]")
{
    auto const conv = conversation(alice);
    auto const m =
        test::insert_message(db, conv, alice, status::complete, core::now_ms(), "ab日本😀z");
    db.exec("UPDATE messages SET reasoning = 'pensé 🤔' WHERE id = '" + m.id + "'");
    CHECK(messages::read_bytes(db, m.id, false, 0, 2) == "ab");
    CHECK(messages::read_bytes(db, m.id, false, 2, 6) == "日本");
    // A cut inside a code point comes back as the raw bytes: the caller trims.
    CHECK(messages::read_bytes(db, m.id, false, 8, 3) == std::string("\xF0\x9F\x98", 3));
    CHECK(messages::read_bytes(db, m.id, false, 8, 100) == "😀z");
    CHECK(messages::read_bytes(db, m.id, false, 13, 10).empty()); // past the end
    CHECK(messages::read_bytes(db, m.id, true, 3, 100) == "sé 🤔");
    CHECK(messages::read_bytes(db, "no-such-message", false, 0, 10).empty());
}
