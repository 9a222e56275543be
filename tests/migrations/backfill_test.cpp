#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/migrations/runner.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/repositories.hpp"

#include "../../migrations/detail/legacy_scan.hpp"
#include "helpers.hpp"
#include "legacy_gen.hpp"
#include "legacy_oracle.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

using namespace chatstream;
using namespace chatstream::migrations;

namespace
{

std::string generated(test::temp_dir& dir, std::int64_t messages,
                      std::string const& name = "legacy.db")
{
    bench::legacy_gen_options o;
    o.messages = messages;
    o.malformed_per_mille = 0; // exactly the three malformed edge cases
    auto path = dir.db(name);
    bench::generate_legacy_db(path, o);
    return path;
}

up_result up(std::string const& path, std::size_t batch = 64)
{
    storage::database db(path, storage::open_mode::read_write);
    up_options o;
    o.batch_size = batch;
    return run_up(db, o);
}

std::string message_id_by_content(storage::database& db, std::string const& content)
{
    auto& q = db.prepare("SELECT id FROM messages WHERE content = ?");
    q.bind(1, content);
    REQUIRE(q.executeStep());
    auto id = q.getColumn(0).getString();
    q.reset();
    return id;
}

std::int64_t count(storage::database& db, std::string const& sql)
{
    return std::stoll(test::query_one(db, sql).value_or("0"));
}

} // namespace

TEST_CASE("001 applies every rule of docs/design.md §5 to the generated edge cases",
          "[migrations][backfill]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 300);
    auto const r = up(path, 7); // odd batch size: edge cases straddle batches
    CHECK(r.start == normalize::start_kind::fresh);
    CHECK(r.processed == 300);

    storage::database db(path, storage::open_mode::read_write);
    CHECK(detect_kind(db) == database_kind::managed);
    auto tool_calls = [&](std::string const& content)
    { return storage::tool_calls::rows_for_message(db, message_id_by_content(db, content)); };

    // UTF-16 offset after "你好吗😀 " is 6 (3 + surrogate pair + space), not 5 code points or 13
    // bytes.
    auto cjk = tool_calls("你好吗😀 here is the weather: sunny");
    REQUIRE(cjk.size() == 1);
    CHECK(cjk[0].text_position == 6);
    CHECK(cjk[0].args == R"({"city":"東京"})");

    auto dup = tool_calls("duplicate ids");
    REQUIRE(dup.size() == 2);
    CHECK(dup[0].tool_call_id == "call_dup");
    CHECK(dup[0].args == R"({"v":2})");

    auto both = tool_calls("ids in both arrays");
    REQUIRE(both.size() == 2);
    CHECK(both[0].tool_call_id == "call_both");
    CHECK_FALSE(both[0].is_partial);
    CHECK(both[0].args == R"({"final":true})");
    CHECK(both[1].tool_call_id == "call_partial");
    CHECK(both[1].is_partial);

    // A missing and a null textPosition (legacy_gen's case 5): both rows, no position.
    auto nopos = tool_calls("missing textPosition");
    REQUIRE(nopos.size() == 2);
    CHECK(nopos[0].tool_call_id == "call_nopos");
    CHECK(nopos[1].tool_call_id == "call_nullpos");
    for (auto const& t : nopos)
        CHECK_FALSE(t.text_position);
    auto big = tool_calls("big arguments");
    REQUIRE(big.size() == 1);
    CHECK(big[0].args.size() > 200 * 1024);
    // An empty and a missing arguments string: both become "{}".
    auto empty = tool_calls("empty arguments");
    REQUIRE(empty.size() == 2);
    CHECK(empty[0].tool_call_id == "call_empty");
    CHECK(empty[1].tool_call_id == "call_missing");
    for (auto const& t : empty)
        CHECK(t.args == "{}");
    auto pp = tool_calls("partial duplicates");
    REQUIRE(pp.size() == 1);
    CHECK(pp[0].args == R"({"step":2})");

    auto const att_msg = message_id_by_content(db, "three attachments 📎");
    CHECK(count(db, "SELECT count(*) FROM attachments WHERE message_id = '" + att_msg + "'") == 3);
    CHECK(count(db, "SELECT max(position) FROM attachments WHERE message_id = '" + att_msg + "'") ==
          2);
    CHECK(count(db, "SELECT count(*) FROM attachments WHERE message_id = '" + att_msg +
                        "' AND metadata IS NULL") == 1);

    // NULL vs [] vs data: no rows for the first two.
    for (auto const* c : {"all NULL", "all empty arrays"})
    {
        auto const id = message_id_by_content(db, c);
        CHECK(count(db, "SELECT count(*) FROM tool_calls WHERE message_id = '" + id + "'") == 0);
        CHECK(count(db, "SELECT count(*) FROM attachments WHERE message_id = '" + id + "'") == 0);
    }

    // Every message against the SQL oracle (legacy_oracle.hpp), which shares
    // nothing with legacy::convert, the code under test.
    auto const oracle = test::legacy_oracle(db, dir.file("oracle.db"));
    REQUIRE(oracle.size() == 300);
    std::set<std::string> quarantined;
    {
        auto& q = db.prepare("SELECT record_id FROM migration_errors WHERE migration_id = ?");
        q.bind(1, normalize_id);
        while (q.executeStep())
            quarantined.insert(q.getColumn(0).getString());
        q.reset();
    }
    std::size_t refused = 0, with_calls = 0, with_attachments = 0;
    for (auto const& [id, want] : oracle)
    {
        INFO("message " << id);
        CHECK(quarantined.count(id) == (want.accepted ? 0u : 1u));
        if (!want.accepted)
        {
            ++refused;
            continue;
        }
        auto const got = storage::tool_calls::rows_for_message(db, id);
        REQUIRE(got.size() == want.tool_calls.size());
        for (std::size_t k = 0; k < got.size(); ++k)
        {
            auto const& w = want.tool_calls[k];
            CHECK(got[k].tool_call_id == w.id);
            CHECK(test::json_equal(got[k].args, w.arguments));
            CHECK(got[k].result.has_value() == w.result.has_value());
            if (got[k].result && w.result)
                CHECK(test::json_equal(*got[k].result, *w.result));
            CHECK(got[k].text_position == w.text_position);
            CHECK(got[k].is_partial == w.is_partial);
        }
        CHECK(count(db, "SELECT count(*) FROM attachments WHERE message_id = '" + id + "'") ==
              want.attachments);
        with_calls += want.tool_calls.empty() ? 0 : 1;
        with_attachments += want.attachments ? 1 : 0;
    }
    CHECK(refused == 3); // the three malformed edge cases
    CHECK(quarantined.size() == 3);
    CHECK(with_calls > 20);
    CHECK(with_attachments > 5);

    // Legacy values are untouched by 001.
    CHECK(test::query_one(
              db, "SELECT attachments FROM messages WHERE content = 'malformed attachments'") ==
          std::optional<std::string>(R"([{"type":"image","name":"x.png")"));

    auto const state = read_migration(db, normalize_id).value();
    CHECK(state.phase == "dual-write");
    CHECK(state.status == "completed");
    CHECK(state.processed == 300);
    CHECK(state.success_count + state.error_count == 300);
    CHECK(state.error_count == quarantined_count(db, normalize_id));
    CHECK(state.total_records == 300);
    CHECK(state.completed_at);
}

TEST_CASE("malformed messages are quarantined with their raw values and never block",
          "[migrations][backfill]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 50);
    up(path);
    storage::database db(path, storage::open_mode::read_write);
    auto const bad = message_id_by_content(db, "malformed arguments");
    auto reason =
        test::query_one(db, "SELECT error FROM migration_errors WHERE record_id = '" + bad + "'");
    REQUIRE(reason);
    CHECK(reason->starts_with("tool_calls[0].arguments: invalid JSON"));
    auto raw =
        test::query_one(db, "SELECT raw FROM migration_errors WHERE record_id = '" + bad + "'")
            .value();
    if (db.is_postgres())
    {
        // ::json throws on invalid JSON, so reaching the comparison proves it valid.
        CHECK(count(db, "SELECT CASE WHEN ('" + raw +
                            "'::json ->> 'tool_calls') = tool_calls THEN 1 ELSE 0 END "
                            "FROM messages WHERE id = '" +
                            bad + "'") == 1);
        CHECK(test::query_one(db, "SELECT json_typeof('" + raw + "'::json -> 'attachments')") ==
              std::optional<std::string>("null"));
    }
    else
    {
        CHECK(count(db, "SELECT json_valid('" + raw + "')") == 1);
        CHECK(test::query_one(db, "SELECT json_extract('" + raw +
                                      "', '$.tool_calls') = tool_calls FROM messages "
                                      "WHERE id = '" +
                                      bad + "'") == std::optional<std::string>("1"));
        CHECK(test::query_one(db, "SELECT json_type('" + raw + "', '$.attachments')") ==
              std::optional<std::string>("null"));
    }
    CHECK(count(db, "SELECT count(*) FROM migration_errors") ==
          3); // the three malformed edge cases
    // The messages after the bad ones were migrated.
    CHECK(count(db, "SELECT count(*) FROM tool_calls") > 5);
}

TEST_CASE("001 is idempotent: a second run, a reset cursor and rollback+up give identical rows",
          "[migrations][backfill]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 2000);
    up(path, 100);
    auto const first = test::dump_migrated(path);
    CHECK(up(path).start == normalize::start_kind::already_done); // short-circuit
    CHECK(test::dump_migrated(path) == first);

    {
        // Force a full re-run over existing rows: upserts must not duplicate.
        storage::database db(path, storage::open_mode::read_write);
        db.exec("UPDATE migrations SET status = 'running', phase = 'backfill', cursor = NULL, "
                "processed = 0, "
                "success_count = 0, error_count = 0, last_processed_id = NULL WHERE id = '001'");
    }
    CHECK(up(path, 333).start == normalize::start_kind::resumed);
    CHECK(test::dump_migrated(path) == first);

    {
        storage::database db(path, storage::open_mode::read_write);
        CHECK(rollback(db, "001") > 0);
        CHECK(count(db, "SELECT count(*) FROM tool_calls") == 0);
        CHECK(count(db, "SELECT count(*) FROM attachments") == 0);
        CHECK(count(db, "SELECT count(*) FROM migration_errors") == 0);
        auto s = read_migration(db, normalize_id).value();
        CHECK(s.status == "rolled-back");
        CHECK(s.processed == 0);
        CHECK(storage::has_legacy_columns(db));
    }
    CHECK(up(path, 50).start == normalize::start_kind::fresh);
    CHECK(test::dump_migrated(path) == first);
}

// SQLite only ([sqlite]: not registered in the pg/ run): PostgreSQL's
// cursor is the message id, which nothing renumbers.
TEST_CASE("a stale cursor (rowids renumbered) restarts the backfill from the beginning",
          "[migrations][backfill][sqlite]")
{
    REQUIRE_FALSE(test::testing_postgres());
    test::temp_dir dir;
    auto const path = generated(dir, 500);
    {
        storage::database db(path, storage::open_mode::read_write);
        apply_schema(db);
        normalize::begin(db);
        storage::transaction tx(db);
        normalize::step(db, 100);
        tx.commit();
        db.exec("UPDATE migrations SET last_processed_id = 'not-the-id-at-the-cursor' WHERE id = "
                "'001'");
    }
    CHECK(up(path).start == normalize::start_kind::fresh);
    storage::database db(path, storage::open_mode::read_write);
    CHECK(read_migration(db, normalize_id)->processed == 500);
    CHECK(verify(db).ok());
}

TEST_CASE("a stop request leaves a resumable checkpoint", "[migrations][backfill]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 1000);
    std::atomic<bool> stop{false};
    {
        storage::database db(path, storage::open_mode::read_write);
        up_options o;
        o.batch_size = 100;
        o.stop = &stop;
        o.on_progress = [&](progress const& p)
        {
            if (p.processed >= 300)
                stop = true;
        };
        auto r = run_up(db, o);
        CHECK(r.stopped);
        auto s = read_migration(db, normalize_id).value();
        CHECK(s.status == "pending");
        CHECK(s.processed == 300);
        // SQLite: the rowid of the 300th message; PostgreSQL: its id (keyset on the key).
        CHECK(s.cursor ==
              (db.is_postgres() ? s.last_processed_id : std::optional<std::string>("300")));
    }
    CHECK(up(path).start == normalize::start_kind::resumed);
    storage::database db(path, storage::open_mode::read_write);
    CHECK(read_migration(db, normalize_id)->processed == 1000);
    CHECK(verify(db).ok());
}

TEST_CASE("a new database has nothing to backfill", "[migrations][backfill]")
{
    test::temp_dir dir;
    auto const path = dir.db("fresh.db");
    CHECK(up(path).start == normalize::start_kind::not_applicable);
    storage::database db(path, storage::open_mode::read_write);
    auto s = read_migration(db, normalize_id).value();
    CHECK(s.phase == "complete");
    CHECK(s.status == "completed");
    CHECK(verify(db).ok());
    CHECK_FALSE(verify(db).legacy_columns);
    CHECK_THROWS_AS(rollback(db, "001"), migration_error);
    CHECK(up(path).start == normalize::start_kind::already_done);
}

TEST_CASE("an orphan message is quarantined instead of failing its batch", "[migrations][backfill]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 40);
    {
        storage::database db(path, storage::open_mode::read_write);
        // Legacy databases rarely enforced foreign keys; switch them off to plant an orphan.
        db.exec(db.is_postgres() ? "SET session_replication_role = replica"
                                 : "PRAGMA foreign_keys=OFF");
        db.exec(
            R"(INSERT INTO messages(id, conversation_id, user_id, role, content, status, created_at, updated_at,
                   tool_calls) VALUES('orphan', 'gone', 'nobody', 'assistant', 'x', 'complete', 1, 1,
                   '[{"id":"c","name":"w","arguments":"{}","timestamp":1}]'))");
    }
    up(path, 10);
    storage::database db(path, storage::open_mode::read_write);
    CHECK(test::query_one(db, "SELECT error FROM migration_errors WHERE record_id = 'orphan'") ==
          std::optional<std::string>("conversation 'gone' does not exist"));
    CHECK(verify(db).ok());
    // ... but cleanup's foreign key check (PostgreSQL: validating the new
    // cascading constraint) refuses to drop the columns around it.
    CHECK_THROWS_AS(cleanup(db), migration_error);
    CHECK(storage::has_legacy_columns(db));
    CHECK(read_migration(db, cleanup_id)->status == "failed");
}

TEST_CASE("verify reports mismatches and cleanup refuses until they are fixed",
          "[migrations][verify][cleanup]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 400);
    storage::database db(path, storage::open_mode::read_write);
    apply_schema(db);

    // Before the backfill: everything is missing, cleanup refuses.
    CHECK_THROWS_AS(cleanup(db), migration_error);
    {
        up_options o;
        o.batch_size = 128;
        run_up(db, o);
    }
    auto const good = verify(db);
    CHECK(good.ok());
    CHECK(good.quarantined == 3);
    CHECK(good.expected_tool_calls == count(db, "SELECT count(*) FROM tool_calls"));
    CHECK(read_migration(db, normalize_id)->phase == "dual-read");

    SECTION("a changed value")
    {
        db.exec("UPDATE tool_calls SET args = '{\"v\":3}' WHERE tool_call_id = 'call_dup'");
        auto bad = verify(db);
        CHECK(bad.mismatch_count == 1);
        CHECK(bad.mismatches.at(0).detail.find("args") != std::string::npos);
    }
    SECTION("a missing row")
    {
        db.exec("DELETE FROM attachments WHERE position = 2");
        CHECK(verify(db).mismatch_count >= 1);
    }
    SECTION("an extra row on a message without arrays")
    {
        auto const id = message_id_by_content(db, "all NULL");
        db.exec("INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, "
                "tool_name, timestamp, "
                "created_at) SELECT 'x', id, conversation_id, user_id, 'x', 'w', 1, 1 FROM "
                "messages WHERE id = '" +
                id + "'");
        auto bad = verify(db);
        REQUIRE(bad.mismatch_count == 1);
        CHECK(bad.mismatches[0].message_id == id);
    }
    SECTION("a malformed message that was never quarantined")
    {
        db.exec("DELETE FROM migration_errors WHERE record_id = (SELECT id FROM messages WHERE "
                "content = "
                "'malformed arguments')");
        auto bad = verify(db);
        REQUIRE(bad.mismatch_count == 1);
        CHECK(bad.mismatches[0].detail.starts_with("malformed and not quarantined"));
    }
    CHECK_THROWS_AS(cleanup(db), migration_error);
    CHECK(storage::has_legacy_columns(db));
    // The refusal is on 002's row, and the file is back in WAL mode.
    auto const refused = read_migration(db, cleanup_id).value();
    CHECK(refused.status == "failed");
    CHECK(refused.error.value_or("").find("refusing to drop") != std::string::npos);
    if (!db.is_postgres())
        CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
}

TEST_CASE("verify in rowid ranges on several connections finds what the single scan finds",
          "[migrations][verify]")
{
    if (test::testing_postgres())
        return; // ranges are SQLite's (rowid); PostgreSQL verifies in one scan
    test::temp_dir dir;
    auto const path = generated(dir, 12000);
    up(path, 5000);
    storage::database db(path, storage::open_mode::read_write);
    auto frozen = [&](unsigned threads)
    {
        // As 002 calls it: inside the write transaction.
        storage::transaction tx(db);
        auto r = detail::verify_frozen(db, 50, threads);
        tx.commit();
        return r;
    };
    auto const single = verify(db);
    REQUIRE(single.ok());
    for (unsigned threads : {2u, 3u})
    {
        auto const r = frozen(threads);
        CHECK(r.ok());
        CHECK(r.messages == single.messages);
        CHECK(r.quarantined == single.quarantined);
        CHECK(r.expected_attachments == single.expected_attachments);
        CHECK(r.expected_tool_calls == single.expected_tool_calls);
    }

    // One wrong row at each end of the rowid order and one missing in the middle.
    for (auto const* order : {"", "DESC"})
        db.exec(fmt::format("UPDATE tool_calls SET args = '{{\"v\":3}}' WHERE id = (SELECT t.id "
                            "FROM tool_calls t JOIN messages m ON m.id = t.message_id ORDER BY "
                            "m.rowid {} LIMIT 1)",
                            order));
    db.exec("DELETE FROM attachments WHERE id = (SELECT a.id FROM attachments a JOIN messages m ON "
            "m.id = a.message_id WHERE m.rowid > 6000 ORDER BY m.rowid LIMIT 1)");
    auto const bad = verify(db);
    REQUIRE(bad.mismatch_count == 3);
    for (unsigned threads : {2u, 3u})
    {
        INFO(threads << " threads");
        auto const r = frozen(threads);
        REQUIRE(r.mismatch_count == 3);
        REQUIRE(r.mismatches.size() == 3);
        for (std::size_t i = 0; i < 3; ++i)
        {
            CHECK(r.mismatches[i].message_id == bad.mismatches[i].message_id);
            CHECK(r.mismatches[i].detail == bad.mismatches[i].detail);
        }
    }
    CHECK_THROWS_AS(cleanup(db), migration_error);
    CHECK(storage::has_legacy_columns(db));
}

TEST_CASE("cleanup rebuilds messages without legacy columns and with cascading deletes",
          "[migrations][cleanup]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 600);
    up(path, 200);
    storage::database db(path, storage::open_mode::read_write);
    auto const before_messages = count(db, "SELECT count(*) FROM messages");
    auto const all_content = db.is_postgres()
                                 ? "SELECT string_agg(id || content, ',' ORDER BY id) FROM messages"
                                 : "SELECT group_concat(id || content, ',') FROM messages";
    auto const before_content = test::query_one(db, all_content);
    auto const rows_before = test::dump_migrated(path);

    CHECK(cleanup(db) == before_messages);
    for (auto const* c : {"attachments", "tool_calls", "partial_tool_calls"})
        CHECK_FALSE(db.has_column("messages", c));
    CHECK(db.has_column("messages", "generation_completed_at"));
    CHECK(count(db, "SELECT count(*) FROM messages") == before_messages);
    CHECK(test::query_one(db, all_content) == before_content);
    if (db.is_postgres())
    {
        CHECK(count(db, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                        "indexname = 'messages_by_conversation'") == 1);
        CHECK(count(db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'messages'::regclass "
                        "AND contype = 'f' "
                        "AND confdeltype = 'c'") == 2);
    }
    else
    {
        CHECK(count(db,
                    "SELECT count(*) FROM sqlite_master WHERE name = 'messages_by_conversation'") ==
              1);
        CHECK(count(db, "SELECT count(*) FROM pragma_foreign_key_list('messages') WHERE on_delete "
                        "= 'CASCADE'") == 2);
        CHECK(count(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
        CHECK(count(db, "PRAGMA foreign_keys") == 1);
    }

    auto const s1 = read_migration(db, normalize_id).value();
    auto const s2 = read_migration(db, cleanup_id).value();
    CHECK(s1.phase == "complete");
    CHECK(s2.phase == "complete");
    CHECK(s2.status == "completed");
    CHECK(s2.processed == before_messages);
    // Quarantined raw values survive the column drop.
    CHECK(count(db, "SELECT count(*) FROM migration_errors") == 3);

    // Deleting a message now cascades at the database level.
    auto const msg = test::query_one(db, "SELECT message_id FROM tool_calls LIMIT 1").value();
    db.exec("DELETE FROM messages WHERE id = '" + msg + "'");
    CHECK(count(db, "SELECT count(*) FROM tool_calls WHERE message_id = '" + msg + "'") == 0);

    CHECK(cleanup(db) == 0); // idempotent
    CHECK_THROWS_AS(rollback(db, "001"), migration_error);
    CHECK(up(path).start == normalize::start_kind::already_done);
}

TEST_CASE("cleanup with another connection open keeps WAL and the same result",
          "[migrations][cleanup]")
{
    if (test::testing_postgres())
        return; // PostgreSQL has one cleanup path
    test::temp_dir dir;
    auto const path = generated(dir, 300);
    up(path, 100);
    storage::database db(path, storage::open_mode::read_write);
    // A server's connection: SQLite refuses to leave WAL, the rebuild runs online.
    storage::database other(path, storage::open_mode::read_write);
    CHECK(test::query_one(other, "SELECT count(*) FROM messages") ==
          std::optional<std::string>("300"));
    CHECK(cleanup(db) == 300);
    CHECK_FALSE(db.has_column("messages", "attachments"));
    CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
    CHECK(test::query_one(other, "SELECT count(*) FROM messages") ==
          std::optional<std::string>("300"));
    CHECK(read_migration(db, cleanup_id)->status == "completed");
}

TEST_CASE("status JSON carries every counter", "[migrations][status]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 100);
    up(path, 30);
    storage::database db(path, storage::open_mode::read_write);
    auto const json = status_json(db);
    for (auto const* key : {"\"legacy_columns\":true", "\"id\":\"001\"", "\"phase\":\"dual-write\"",
                            "\"status\":\"completed\"", "\"processed\":100", "\"error_count\":3",
                            "\"quarantined\":3", "\"total_records\":100", "\"success_count\":97",
                            "\"last_processed_id\":", "\"0002_normalized_tables.sql\""})
        CHECK_THAT(json, Catch::Contains(key));
    auto const last = read_migration(db, normalize_id)->last_processed_id.value();
    // SQLite's cursor is the rowid of the last message, PostgreSQL's its id.
    CHECK_THAT(json, Catch::Contains("\"cursor\":\"" +
                                     (db.is_postgres() ? last : std::string("100")) + "\""));
    if (db.is_postgres())
        CHECK(count(db, "SELECT CASE WHEN '" + json + "'::json IS NOT NULL THEN 1 END") == 1);
    else
        CHECK(count(db, "SELECT json_valid('" + json + "')") == 1);
}

TEST_CASE("a legacy database's reasoning columns are kept through 001 and 002 (docs/design.md §9)",
          "[migrations][backfill][cleanup][reasoning]")
{
    test::temp_dir dir;
    auto const path = generated(dir, 300);
    std::string thought_id, partial_id;
    {
        // The seed's messages had these two; 0007 must add only the rest.
        storage::database db(path, storage::open_mode::read_write);
        db.exec("ALTER TABLE messages ADD COLUMN reasoning TEXT");
        db.exec("ALTER TABLE messages ADD COLUMN partial_reasoning TEXT");
        thought_id =
            test::query_one(db, "SELECT min(id) FROM messages WHERE role = 'assistant'").value();
        partial_id =
            test::query_one(db, "SELECT max(id) FROM messages WHERE role = 'assistant'").value();
        db.exec("UPDATE messages SET reasoning = 'Let me think 🤔' WHERE id = '" + thought_id +
                "'");
        db.exec("UPDATE messages SET partial_reasoning = 'half a tho' WHERE id = '" + partial_id +
                "'");
    }
    up(path, 50);
    storage::database db(path, storage::open_mode::read_write);
    for (auto const* c : {"reasoning", "partial_reasoning", "reasoning_tokens",
                          "thinking_started_at", "thinking_completed_at"})
        CHECK(db.has_column("messages", c));
    CHECK(verify(db).ok());
    CHECK(cleanup(db) == 300);
    CHECK_FALSE(storage::has_legacy_columns(db));
    auto const reasoning_of = [&](std::string const& id)
    {
        return test::query_one(
                   db, "SELECT coalesce(reasoning, '-') || '|' || coalesce(partial_reasoning, '-') "
                       "FROM messages WHERE id = '" +
                           id + "'")
            .value();
    };
    CHECK(reasoning_of(thought_id) == "Let me think 🤔|-");
    CHECK(reasoning_of(partial_id) == "-|half a tho");
    // And the repositories read them.
    auto const row = storage::messages::get_unscoped(db, thought_id);
    REQUIRE(row);
    CHECK(row->reasoning == std::optional<std::string>("Let me think 🤔"));
}

// SQLite only: the offline bulk path exists there alone.
TEST_CASE("migrate up bulk-loads offline only when no other connection has the file open, with the "
          "same rows",
          "[migrations][backfill][sqlite]")
{
    test::temp_dir dir;
    auto const legacy = generated(dir, 3000);
    auto const online = dir.file("online.db"), offline = dir.file("offline.db");
    std::filesystem::copy_file(legacy, online);
    std::filesystem::copy_file(legacy, offline);
    auto check_settled = [](std::string const& path)
    {
        // Whichever path ran, the file ends as every opener expects it.
        storage::database db(path, storage::open_mode::read_write);
        CHECK(test::query_one(db, "PRAGMA journal_mode") == std::optional<std::string>("wal"));
        CHECK_FALSE(db.has_table("migration_deferred_indexes"));
        CHECK(count(db,
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                    "AND tbl_name IN ('attachments', 'tool_calls')") == 6);
    };
    {
        // A server attached: SQLite refuses to leave WAL, so the indexes
        // stay and the journal too.
        storage::database server(online, storage::open_mode::read_write);
        CHECK(test::query_one(server, "SELECT count(*) FROM messages") ==
              std::optional<std::string>("3000"));
        storage::database db(online, storage::open_mode::read_write);
        up_options o;
        o.batch_size = 500;
        auto const r = run_up(db, o);
        CHECK_FALSE(r.offline);
        CHECK(r.processed == 3000);
    }
    check_settled(online);
    {
        storage::database db(offline, storage::open_mode::read_write);
        up_options o;
        o.batch_size = 500;
        auto const r = run_up(db, o);
        CHECK(r.offline);
        CHECK(r.processed == 3000);
        // The connection gets its foreign keys back for whatever it does next.
        CHECK(test::query_one(db, "PRAGMA foreign_keys") == std::optional<std::string>("1"));
    }
    check_settled(offline);
    CHECK(test::dump_migrated(offline) == test::dump_migrated(online));
    for (auto const& path : {online, offline})
    {
        storage::database db(path, storage::open_mode::read_write);
        CHECK(verify(db).ok());
    }
}
