// Issue 12 mutations on a legacy database whose backfill has not run yet:
// branch must carry the legacy arrays, and the backfill + verify that run
// afterwards must agree with what was copied.
#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/migrations/runner.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/repositories.hpp"

#include "helpers.hpp"
#include "legacy_gen.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;

TEST_CASE("branch and truncate on a legacy database before its backfill", "[migrations][lifecycle]")
{
    test::temp_dir dir;
    bench::legacy_gen_options o;
    o.messages = 600;
    o.malformed_per_mille = 0;
    auto const path = dir.db("legacy.db");
    bench::generate_legacy_db(path, o);
    storage::database db(path, storage::open_mode::read_write);
    migrations::apply_schema(db);
    REQUIRE(storage::has_legacy_columns(db));

    // Messages with legacy tool calls, and their owners.
    std::vector<std::pair<std::string, std::string>> picked;
    {
        auto& q =
            db.prepare(std::string("SELECT id, user_id FROM messages WHERE tool_calls LIKE '[{%' "
                                   "AND status NOT IN ('pending','generating') ORDER BY ") +
                       (db.is_postgres() ? "id" : "rowid") + " LIMIT 40");
        while (q.executeStep())
            picked.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getString());
    }
    REQUIRE(picked.size() == 40);

    auto const now = core::now_ms();
    std::vector<std::pair<std::string, std::string>> copies; // (conversation, owner)
    int branched = 0;
    for (auto const& [message_id, user] : picked)
    {
        auto const before = storage::tool_calls::list_for_message(db, user, message_id, true);
        if (before.empty())
            continue; // a malformed edge case of the generator: it gets quarantined
        ++branched;
        auto const copy = storage::conversations::branch(db, user, message_id, core::new_id(), now);
        copies.emplace_back(copy.id, user);
        auto const ids = storage::messages::list(db, user, copy.id, {{}, 500}).rows;
        REQUIRE_FALSE(ids.empty());
        auto const& last = ids.back();
        auto const after = storage::tool_calls::list_for_message(db, user, last.id, true);
        REQUIRE(after.size() == before.size());
        for (std::size_t i = 0; i < after.size(); ++i)
        {
            CHECK(after[i].id == before[i].id);
            CHECK(after[i].arguments == before[i].arguments);
            CHECK(after[i].result == before[i].result);
            CHECK(after[i].text_position == before[i].text_position);
        }
        CHECK(copy.message_count == static_cast<std::int64_t>(ids.size()));
    }

    CHECK(branched >= 20); // read through the legacy fallback

    // Truncating a copy (what regenerate does) leaves no orphan rows.
    {
        auto const& [conversation, user] = copies.front();
        auto const rows = storage::messages::list(db, user, conversation, {{}, 500}).rows;
        REQUIRE_FALSE(rows.empty());
        auto const removed = storage::messages::remove_from(db, rows.front(), now);
        CHECK(removed.size() == rows.size());
        CHECK(storage::conversations::get(db, user, conversation)->message_count == 0);
        CHECK(test::query_one(db, "SELECT count(*) FROM tool_calls WHERE message_id NOT IN "
                                  "(SELECT id FROM messages)") == "0");
    }

    // The backfill then converts the copies' arrays too, and verify agrees.
    migrations::run_up(db);
    auto const report = migrations::verify(db);
    CHECK(report.ok());
    CHECK(report.mismatch_count == 0);
}
