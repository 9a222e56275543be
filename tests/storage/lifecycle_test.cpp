// Conversation lifecycle writes (storage/conversations.cpp and messages.cpp),
// usage accounting and conversation paging: the SQL the streaming layer runs,
// here on both backends (the streaming suites run on SQLite only).
#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/ids.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/usage.hpp"
#include "rows.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::storage;

namespace
{

struct lifecycle_fixture
{
    test::temp_dir dir;
    database db{test::migrated_db(dir), open_mode::read_write};
    std::string alice = users::ensure(db, "alice");
    std::string bob = users::ensure(db, "bob");
    std::int64_t clock = 1'000;

    std::string conversation(std::string const& user, std::int64_t at)
    {
        return test::insert_conversation(db, user, at).id;
    }
    message_row message(std::string const& conv, std::string const& user,
                        std::string const& content)
    {
        return test::insert_message(db, conv, user, status::complete, ++clock, content);
    }
};

} // namespace

TEST_CASE_METHOD(lifecycle_fixture, "conversations::update applies only the fields given",
                 "[storage][lifecycle]")
{
    auto const conv = conversation(alice, 1);
    conversations::patch p;
    p.title = "Renamed";
    p.pinned = true;
    p.model = std::optional<std::string>("gpt-4o");
    p.system_prompt = std::optional<std::string>("be brief");
    auto r = conversations::update(db, alice, conv, p, 50).value();
    CHECK(r.title == "Renamed");
    CHECK(r.pinned);
    CHECK_FALSE(r.archived);
    CHECK(r.model == "gpt-4o");
    CHECK(r.system_prompt == "be brief");
    CHECK(r.updated_at == 50);

    // Absent fields stay; an engaged empty optional clears.
    conversations::patch q;
    q.archived = true;
    q.pinned = false;
    q.model = std::optional<std::string>();
    r = conversations::update(db, alice, conv, q, 60).value();
    CHECK(r.title == "Renamed");
    CHECK_FALSE(r.pinned);
    CHECK(r.archived);
    CHECK_FALSE(r.model);
    CHECK(r.system_prompt == "be brief");

    CHECK_FALSE(conversations::update(db, bob, conv, p, 70)); // not his
    CHECK(conversations::get(db, alice, conv)->updated_at == 60);
}

TEST_CASE_METHOD(lifecycle_fixture, "a generated title never replaces a rename",
                 "[storage][lifecycle]")
{
    auto const conv = conversation(alice, 1);
    CHECK(conversations::set_generated_title(db, conv, "Weather in Tokyo", 10));
    CHECK(conversations::get(db, alice, conv)->title == "Weather in Tokyo");
    CHECK_FALSE(conversations::set_generated_title(db, conv, "Another", 11));

    auto const renamed = conversation(alice, 1);
    conversations::patch p;
    p.title = "Mine";
    conversations::update(db, alice, renamed, p, 5);
    CHECK_FALSE(conversations::set_generated_title(db, renamed, "Generated", 12));
    CHECK(conversations::get(db, alice, renamed)->title == "Mine");
}

TEST_CASE_METHOD(lifecycle_fixture, "remove_from truncates from a message on and recounts",
                 "[storage][lifecycle]")
{
    auto const conv = conversation(alice, 1);
    std::vector<message_row> ms;
    for (int i = 0; i < 4; ++i)
        ms.push_back(message(conv, alice, "m" + std::to_string(i)));
    tool_call_row t;
    t.message_id = ms[3].id;
    t.conversation_id = conv;
    t.user_id = alice;
    t.tool_call_id = "call_1";
    t.tool_name = "calculator";
    t.timestamp = 1;
    tool_calls::upsert(db, t);

    auto const removed = messages::remove_from(db, ms[2], 100);
    CHECK(removed == std::vector<std::string>{ms[2].id, ms[3].id});
    auto const c = conversations::get(db, alice, conv).value();
    CHECK(c.message_count == 2);
    CHECK(c.last_message_at == ms[1].created_at);
    CHECK(c.updated_at == 100);
    CHECK(tool_calls::rows_for_message(db, ms[3].id).empty());
    CHECK(messages::history(db, conv).size() == 2);
}

TEST_CASE_METHOD(lifecycle_fixture, "branch copies messages up to the pivot with their children",
                 "[storage][lifecycle]")
{
    auto const conv = conversation(alice, 1);
    auto const m1 = message(conv, alice, "first");
    auto const m2 = message(conv, alice, "second");
    message(conv, alice, "after the pivot");
    tool_call_row t;
    t.message_id = m2.id;
    t.conversation_id = conv;
    t.user_id = alice;
    t.tool_call_id = "call_1";
    t.tool_name = "calculator";
    t.args = R"({"expression":"1+1"})";
    t.result = R"({"value":2})";
    t.is_partial = false;
    t.text_position = 3;
    t.timestamp = 7;
    tool_calls::upsert(db, t);
    attachment_row a;
    a.message_id = m1.id;
    a.conversation_id = conv;
    a.user_id = alice;
    a.type = "image";
    a.name = "cat.png";
    a.storage_id = "sha";
    a.mime_type = "image/png";
    a.size = 3;
    a.metadata = R"({"width":1})";
    attachments::insert(db, a);

    CHECK_THROWS_AS(conversations::branch(db, bob, m2.id, core::new_id(), 200),
                    storage_error); // not his
    auto const copy = conversations::branch(db, alice, m2.id, core::new_id(), 200);
    CHECK(copy.message_count == 2);
    CHECK(copy.created_at == 200);
    auto const rows = messages::list(db, alice, copy.id, {}).rows;
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].content == "first");
    CHECK(rows[1].content == "second");
    CHECK(rows[1].id != m2.id);

    auto const calls = tool_calls::list_for_message(db, alice, rows[1].id, true);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].id == "call_1");
    CHECK(calls[0].arguments == t.args);
    CHECK(calls[0].result == t.result);
    CHECK(calls[0].text_position == 3);
    auto const atts = attachments::list_for_message(db, alice, rows[0].id);
    REQUIRE(atts.size() == 1);
    CHECK(atts[0].name == "cat.png");
    CHECK(atts[0].metadata == a.metadata);
    CHECK(atts[0].conversation_id == copy.id);

    // The source is untouched.
    CHECK(conversations::get(db, alice, conv)->message_count == 3);
}

TEST_CASE_METHOD(lifecycle_fixture,
                 "conversations page newest first and bad cursors are refused alike",
                 "[storage][pagination]")
{
    std::vector<std::string> newest_first;
    for (int i = 0; i < 7; ++i)
        newest_first.insert(newest_first.begin(), conversation(alice, 10 + i / 2));
    conversation(bob, 99);
    page_request req;
    req.limit = 3;
    std::vector<std::string> seen;
    for (;;)
    {
        auto p = conversations::list(db, alice, req);
        for (auto& c : p.rows)
            seen.push_back(c.id);
        if (!p.next_cursor)
            break;
        req.cursor = p.next_cursor;
    }
    CHECK(seen == newest_first);

    // Each is refused before it reaches the database: PostgreSQL would
    // refuse the non-UTF-8 one itself, SQLite would quietly compare it.
    for (auto const& bad : std::vector<std::string>{"garbage", "12|\xff\xfe",
                                                    std::string("12|a\0b", 5), "12x|id", "|id"})
    {
        req.cursor = bad;
        CHECK_THROWS_AS(conversations::list(db, alice, req), storage_error);
        CHECK_THROWS_AS(messages::list(db, alice, newest_first[0], req), storage_error);
    }
}

TEST_CASE_METHOD(lifecycle_fixture, "usage accumulates per user, day and model", "[storage][usage]")
{
    usage::add_message(db, alice, "2026-11-26", "");
    usage::add_message(db, alice, "2026-11-26", "gpt-4o");
    usage::add_message(db, alice, "2026-11-26", "gpt-4o");
    usage::add_completion(db, alice, "2026-11-26", "gpt-4o", 100, 20, 0.25);
    usage::add_completion(db, alice, "2026-11-26", "gpt-4o", 1, 2, 0.5);
    usage::add_completion(db, alice, "2026-11-27", "", 5, 5,
                          1.0); // a completion with no accepted row yet
    usage::add_message(db, bob, "2026-11-26", "");

    CHECK(usage::messages_on(db, alice, "2026-11-26") == 3);
    CHECK(usage::messages_on(db, alice, "2026-11-25") == 0);
    CHECK(usage::cost_between(db, alice, "2026-11-26", "2026-11-26") == Approx(0.75));
    CHECK(usage::cost_between(db, alice, "2026-11-01", "2026-11-30") == Approx(1.75));
    CHECK(usage::cost_between(db, bob, "2026-11-01", "2026-11-30") == 0);

    auto const rows = usage::list(db, alice, "2026-11-26", "2026-11-27");
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].model == "");
    CHECK(rows[0].message_count == 1);
    CHECK(rows[1].model == "gpt-4o");
    CHECK(rows[1].message_count == 2);
    CHECK(rows[1].input_tokens == 101);
    CHECK(rows[1].output_tokens == 22);
    CHECK(rows[1].cost == Approx(0.75));
    CHECK(rows[2].day == "2026-11-27");
    CHECK(rows[2].message_count == 0);
    CHECK(rows[2].input_tokens == 5);
}
