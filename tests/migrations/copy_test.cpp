// `migrate copy`: SQLite → PostgreSQL. The source is always a SQLite file;
// the target is a fresh PostgreSQL schema, so these run in the pg/ variant.
#include "chatstream/migrations/copy.hpp"
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/migrations/runner.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/repositories.hpp"

#include "helpers.hpp"
#include "legacy_gen.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

using namespace chatstream;
using namespace chatstream::migrations;

namespace
{

// Copies go to PostgreSQL: these cases are tagged [postgres], which
// registers them only in the pg/ run (tests/CMakeLists.txt). Run by hand
// without a cluster, they fail here instead of passing unchecked.
#define REQUIRE_POSTGRES_TARGET() REQUIRE(test::testing_postgres())

std::int64_t count(storage::database& db, std::string const& sql)
{
    return std::stoll(test::query_one(db, sql).value_or("0"));
}

// dump_migrated with every section's lines sorted: row order is a
// collation detail, the rows are what must match.
std::string sorted_dump(std::string const& location)
{
    std::istringstream in(test::dump_migrated(location));
    std::string out, line;
    std::vector<std::string> section;
    while (std::getline(in, line))
    {
        if (line != "--")
        {
            section.push_back(line);
            continue;
        }
        std::sort(section.begin(), section.end());
        for (auto const& l : section)
            out += l + "\n";
        out += "--\n";
        section.clear();
    }
    return out;
}

std::string legacy_source(test::temp_dir& dir, std::int64_t messages,
                          char const* name = "source.db")
{
    bench::legacy_gen_options o;
    o.messages = messages;
    auto const path = dir.file(name);
    bench::generate_legacy_db(path, o);
    return path;
}

// A current-schema SQLite database with a row in every table, REAL values
// that print differently in SQLite and PostgreSQL, and NULLs.
std::string current_source(test::temp_dir& dir)
{
    auto const path = dir.file("current.db");
    storage::database db(path, storage::open_mode::read_write);
    run_up(db); // schema + 001 recorded as not applicable
    db.exec(R"sql(
INSERT INTO users(id, external_id, name, created_at) VALUES('u1', 'ext|u1', 'Zoë 😀', 1700000000000),
  ('u2', NULL, NULL, 1700000000001);
INSERT INTO conversations(id, user_id, title, model, pinned, archived, starred, message_count, system_prompt,
  last_message_at, created_at, updated_at)
  VALUES('c1', 'u1', '你好', 'gpt-4o', 1, 0, 1, 2, 'be brief', 1700000000500, 1700000000000, 1700000000500),
        ('c2', 'u2', 'New Chat', NULL, 0, 0, 0, 0, NULL, NULL, 1700000000002, 1700000000002);
INSERT INTO messages(id, conversation_id, user_id, role, content, partial_content, status, model, error,
  finish_reason, input_tokens, output_tokens, cost, tokens_per_second, first_token_at, generation_started_at,
  generation_completed_at, created_at, updated_at)
  VALUES('m1', 'c1', 'u1', 'user', 'hi ''quoted'' \ back', NULL, 'complete', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, 1700000000100, 1700000000100),
        ('m2', 'c1', 'u1', 'assistant', 'the answer', NULL, 'complete', 'gpt-4o', NULL, 'stop', 12, 345,
         0.1, 123.45678901234567, 1700000000200, 1700000000150, 1700000000400, 1700000000150, 1700000000400),
        ('m3', 'c1', 'u1', 'assistant', '', 'partial…', 'generating', 'gpt-4o', NULL, NULL, 1, NULL,
         1e-300, 3.0, NULL, 1700000000450, NULL, 1700000000450, 1700000000450);
INSERT INTO attachments(id, message_id, conversation_id, user_id, position, type, name, storage_id, mime_type, size,
  metadata, created_at)
  VALUES('a1', 'm1', 'c1', 'u1', 0, 'image', 'cat.png', 'sha-1', 'image/png', 1234, '{"width":10,"height":20}',
         1700000000100),
        ('a2', 'm1', 'c1', 'u1', 1, 'file', 'a.pdf', 'sha-2', 'application/pdf', 99, NULL, 1700000000100);
INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, tool_name, args, result, text_position,
  is_partial, timestamp, created_at)
  VALUES('t1', 'm2', 'c1', 'u1', 'call_1', 'weather', '{"city":"東京"}', '{"t":21.5}', 3, 0, 1700000000300,
         1700000000150),
        ('t2', 'm3', 'c1', 'u1', 'call_2', 'calculator', '{}', NULL, NULL, 1, 1700000000460, 1700000000450);
INSERT INTO files(storage_id, size, mime_type, metadata, created_at)
  VALUES('sha-1', 1234, 'image/png', '{"width":10}', 1700000000050);
INSERT INTO uploads(user_id, storage_id, name, mime_type, uploaded_at)
  VALUES('u1', 'sha-1', 'cat.png', 'image/png', 1700000000060);
INSERT INTO usage(user_id, day, model, input_tokens, output_tokens, cost, message_count)
  VALUES('u1', '2023-11-14', 'gpt-4o', 12, 345, 0.30000000000000004, 2), ('u1', '2023-11-15', '', 0, 0, 0, 1);
INSERT INTO nodes(id, address, started_at, heartbeat_at) VALUES('n1', '127.0.0.1:8080', 1700000000000, 1700000000400);
INSERT INTO generations(message_id, node_id, started_at) VALUES('m3', 'n1', 1700000000450);
INSERT INTO source_metadata(url_hash, url, domain, og_title, fetched_at)
  VALUES('h1', 'https://example.com/a', 'example.com', 'Ex', 1700000000300),
        ('h2', 'https://other.org/', 'other.org', NULL, NULL);
INSERT INTO sources(id, message_id, conversation_id, user_id, position, url_hash, url, title, snippet,
  published_date, provider, is_partial, created_at)
  VALUES('s1', 'm2', 'c1', 'u1', 1, 'h1', 'https://Example.com/a#x', 'A', 'snip', '2024-01-02', 'upstream', 0,
         1700000000300),
        ('s2', 'm2', 'c1', 'u1', 2, 'h2', 'https://other.org/', NULL, NULL, NULL, 'tool', 0, 1700000000300),
        ('s3', 'm3', 'c1', 'u1', 1, 'h1', 'https://example.com/a', NULL, NULL, NULL, 'upstream', 1,
         1700000000460);
)sql");
    return path;
}

table_copy_report const& table(copy_report const& r, std::string const& name)
{
    auto it = std::find_if(r.tables.begin(), r.tables.end(),
                           [&](auto const& t) { return t.table == name; });
    REQUIRE(it != r.tables.end());
    return *it;
}

std::vector<std::string> copy_args(std::string const& from, std::string const& to, int batch)
{
    return {"migrate", "copy", "--from",       "sqlite:" + from,
            "--to",    to,     "--batch-size", std::to_string(batch)};
}

} // namespace

TEST_CASE("copy a legacy database: the target is what migrate up makes of it, and 001 runs there",
          "[migrations][copy][postgres]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = legacy_source(dir, 1500);
    auto const target = dir.db("target");
    {
        storage::database from(source, storage::open_mode::read_write);
        storage::database to(target, storage::open_mode::read_write);
        copy_options o;
        o.batch_size = 97; // batches straddle conversations
        auto const r = copy_database(from, to, o);
        CHECK(r.ok());
        CHECK(r.source_kind == "legacy");
        CHECK(table(r, "messages").source_rows == 1500);
        CHECK(table(r, "messages").target_rows == 1500);
        CHECK(table(r, "messages").copied_now == 1500);
        CHECK(table(r, "users").ok());
        CHECK(table(r, "conversations").ok());
        CHECK(r.tables.size() == 3); // no schema_migrations in an unmigrated legacy source
        CHECK(r.schema_applied.size() == schema_files(storage::dialect::postgres).size());

        // The shape `migrate up` gives a legacy database: legacy columns kept,
        // 0001 applied (not skipped), message counts computed from the rows.
        CHECK(detect_kind(to) == database_kind::managed);
        CHECK(storage::has_legacy_columns(to));
        CHECK(count(to, "SELECT skipped FROM schema_migrations WHERE version = 1") == 0);
        CHECK(count(to, "SELECT count(*) FROM conversations c WHERE message_count <> "
                        "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)") == 0);
        CHECK(count(to, "SELECT sum(message_count) FROM conversations") == 1500);
    }

    // 001 on the copy produces exactly what it produces on the original.
    {
        storage::database db(source, storage::open_mode::read_write);
        run_up(db, {.batch_size = 200});
        CHECK(verify(db).ok());
    }
    {
        storage::database db(target, storage::open_mode::read_write);
        run_up(db, {.batch_size = 200});
        CHECK(verify(db).ok());
    }
    CHECK(sorted_dump(target) == sorted_dump(source));
}

TEST_CASE("copy a backfilled legacy database: legacy shape, 001 rows and quarantine carry over, "
          "002 runs there",
          "[migrations][copy][postgres]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = legacy_source(dir, 800);
    {
        storage::database db(source, storage::open_mode::read_write);
        run_up(db, {.batch_size = 100});
        // What a killed offline load leaves: an index dropped, its SQL stashed.
        db.exec("CREATE TABLE migration_deferred_indexes(name TEXT PRIMARY KEY, sql TEXT NOT "
                "NULL)");
        db.exec("INSERT INTO migration_deferred_indexes SELECT name, sql FROM sqlite_master "
                "WHERE name = 'attachments_by_user'");
        db.exec("DROP INDEX attachments_by_user");
    }
    auto const target = dir.db("target");
    {
        storage::database from(source, storage::open_mode::read_write);
        storage::database to(target, storage::open_mode::read_write);
        auto const r = copy_database(from, to, {.batch_size = 64});
        CHECK(r.ok());
        CHECK(r.source_kind == "managed");
        for (auto const* t :
             {"attachments", "tool_calls", "migrations", "migration_errors", "schema_migrations"})
        {
            INFO(t);
            CHECK(table(r, t).ok());
        }
        CHECK(table(r, "migration_errors").target_rows > 0); // the generator's malformed messages
        CHECK(storage::has_legacy_columns(to));
        CHECK(count(to, "SELECT skipped FROM schema_migrations WHERE version = 1") == 0);
        // The stash stays behind; the target has the index from its own schema.
        CHECK_FALSE(to.has_table("migration_deferred_indexes"));
        CHECK(count(to, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                        "indexname = 'attachments_by_user'") == 1);
    }
    CHECK(sorted_dump(target) == sorted_dump(source));

    // The copy is a legacy database in phase dual-write: verify, then 002's
    // DROP COLUMN cleanup on PostgreSQL.
    storage::database db(target, storage::open_mode::read_write);
    CHECK(read_migration(db, normalize_id)->phase == "dual-write");
    CHECK(verify(db).ok());
    CHECK(cleanup(db) == 800);
    CHECK_FALSE(storage::has_legacy_columns(db));
    CHECK(read_migration(db, cleanup_id)->status == "completed");
}

TEST_CASE("copy a current database: every table, REAL and NULL values, schema history",
          "[migrations][copy][postgres]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = current_source(dir);
    auto const target = dir.db("target");
    storage::database from(source, storage::open_mode::read_write);
    storage::database to(target, storage::open_mode::read_write);
    auto const r = copy_database(from, to, {.batch_size = 2});
    CHECK(r.ok());
    CHECK(r.source_kind == "managed");
    for (auto const* t : {"users", "conversations", "messages", "attachments", "tool_calls",
                          "files", "uploads", "usage", "nodes", "generations", "migrations",
                          "schema_migrations", "sources", "source_metadata"})
    {
        INFO(t);
        auto const& tr = table(r, t);
        CHECK(tr.ok());
        CHECK(tr.target_rows == count(from, std::string("SELECT count(*) FROM ") + t));
        CHECK(tr.target_rows == count(to, std::string("SELECT count(*) FROM ") + t));
    }
    CHECK(table(r, "messages").target_rows == 3);
    CHECK(table(r, "usage").target_rows == 2);
    // access_count is the triggers' (0008): the copy does not count twice.
    CHECK(count(to, "SELECT access_count FROM source_metadata WHERE url_hash = 'h1'") == 2);

    // Doubles arrive bit for bit (PostgreSQL prints 0.1 and 1e-300 its own way).
    for (auto const* id : {"m2", "m3"})
    {
        auto& a = from.prepare("SELECT cost, tokens_per_second FROM messages WHERE id = ?");
        auto& b = to.prepare("SELECT cost, tokens_per_second FROM messages WHERE id = ?");
        a.bind(1, id);
        b.bind(1, id);
        REQUIRE(a.executeStep());
        REQUIRE(b.executeStep());
        CHECK(a.getColumn(0).getDouble() == b.getColumn(0).getDouble());
        CHECK(a.getColumn(1).getDouble() == b.getColumn(1).getDouble());
        a.reset();
        b.reset();
    }
    CHECK(test::query_one(to, "SELECT content FROM messages WHERE id = 'm1'") ==
          std::optional<std::string>("hi 'quoted' \\ back"));
    CHECK_FALSE(test::query_one(to, "SELECT partial_content FROM messages WHERE id = 'm1'"));

    // schema_migrations: the target's own checksums (PostgreSQL files), the
    // source's history.
    CHECK_NOTHROW(check_schema_checksums(to));
    CHECK(test::query_one(to, "SELECT string_agg(version || ':' || applied_at || ':' || skipped, "
                              "',' ORDER BY version) "
                              "FROM schema_migrations") ==
          test::query_one(
              from, "SELECT group_concat(version || ':' || applied_at || ':' || skipped, ',') FROM "
                    "(SELECT * FROM schema_migrations ORDER BY version)"));
    // The cascades of the PostgreSQL schema hold on the copied rows.
    to.exec("DELETE FROM users WHERE id = 'u1'");
    CHECK(count(to, "SELECT count(*) FROM tool_calls") == 0);
    CHECK(count(to, "SELECT count(*) FROM generations") == 0);
}

TEST_CASE("copy: a second run copies nothing and verifies again, another source or a foreign "
          "target is refused",
          "[migrations][copy][postgres]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = current_source(dir);
    auto const target = dir.db("target");
    auto const log = dir.file("out.txt");
    auto r = test::run_chatstream(copy_args(source, target, 1000), log);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("\"ok\":true"));
    r = test::run_chatstream(copy_args(source, target, 1000), log);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("\"copied\":0,\"copy_seconds\""));
    CHECK_THAT(r.output, Catch::Contains("\"ok\":true"));

    // Another source into the same target: refused, nothing touched.
    auto const other = legacy_source(dir, 50, "other.db");
    r = test::run_chatstream(copy_args(other, target, 1000), log);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output,
               Catch::Contains("refused: the target holds a copy in progress of another source"));

    auto const foreign = dir.db("foreign");
    {
        storage::database db(foreign, storage::open_mode::read_write);
        db.exec("CREATE TABLE something_else(x INTEGER)");
    }
    r = test::run_chatstream(copy_args(source, foreign, 1000), log);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains("refused: the target already has tables"));
}

TEST_CASE("copy: kill -9 mid-copy, re-run: resumes from the checkpoint, no duplicates, verified",
          "[migrations][copy][process][postgres]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = legacy_source(dir, 30000);
    auto const target = dir.db("target");
    auto const log = dir.file("out.txt");

    // One polling connection (a new one per poll is slow enough to miss the
    // window between "copying messages" and "done").
    std::optional<storage::database> poll;
    auto copied = [&]() -> std::int64_t
    {
        try
        {
            if (!poll)
                poll.emplace(target, storage::open_mode::read_only);
            if (!poll->has_table("copy_progress"))
                return 0;
            return std::stoll(
                test::query_one(
                    *poll, "SELECT rows_copied FROM copy_progress WHERE table_name = 'messages'")
                    .value_or("0"));
        }
        catch (std::exception const&)
        {
            poll.reset();
            return 0;
        }
    };
    std::int64_t last = 0;
    int kills = 0;
    for (int round = 0; round < 2; ++round)
    {
        auto const pid = test::spawn_chatstream(copy_args(source, target, 100), log);
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline && copied() < last + 4000)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        kill(pid, SIGKILL);
        if (test::wait_exit(pid) == 128 + SIGKILL)
            ++kills;
        // A COMMIT the client sent just before dying still completes on the
        // server; let that backend finish before reading the final state.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        storage::database db(target, storage::open_mode::read_only);
        // The checkpoint and the rows commit together: one snapshot sees them agree.
        auto& q =
            db.prepare("SELECT (SELECT count(*) FROM messages), "
                       "(SELECT rows_copied FROM copy_progress WHERE table_name = 'messages')");
        REQUIRE(q.executeStep());
        last = q.getColumn(1).getInt64();
        CHECK(q.getColumn(0).getInt64() == last);
        q.reset();
    }
    CHECK(kills >= 1);
    CHECK(last > 0);
    CHECK(last < 30000); // the kills landed mid-copy

    auto r = test::run_chatstream(copy_args(source, target, 100), log);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("\"ok\":true"));
    CHECK_THAT(r.output, Catch::Contains(
                             "{\"table\":\"messages\",\"source_rows\":30000,\"target_rows\":30000,"
                             "\"copied\":" +
                             std::to_string(30000 - last) + ",\"resumed\":true"));
    storage::database db(target, storage::open_mode::read_only);
    CHECK(count(db, "SELECT count(*) FROM messages") == 30000);
    CHECK(count(db, "SELECT count(DISTINCT id) FROM messages") == 30000);
}

TEST_CASE("copy: verify catches a corrupted target", "[migrations][copy][verify][postgres]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = current_source(dir);
    auto const target = dir.db("target");
    auto const log = dir.file("out.txt");
    REQUIRE(test::run_chatstream(copy_args(source, target, 1000), log).exit_code == 0);

    std::string table_name, corruption;
    SECTION("a changed text value")
    {
        table_name = "messages";
        corruption = "UPDATE messages SET content = 'the answer.' WHERE id = 'm2'";
    }
    SECTION("a REAL off by one ulp")
    {
        table_name = "usage";
        corruption = "UPDATE usage SET cost = 0.3 WHERE cost > 0";
    }
    SECTION("empty text instead of NULL")
    {
        table_name = "conversations";
        corruption = "UPDATE conversations SET system_prompt = '' WHERE id = 'c2'";
    }
    SECTION("a missing row")
    {
        table_name = "attachments";
        corruption = "DELETE FROM attachments WHERE id = 'a2'";
    }
    {
        storage::database db(target, storage::open_mode::read_write);
        db.exec(corruption);
    }
    auto const r = test::run_chatstream(copy_args(source, target, 1000), log);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains("\"ok\":false"));
    CHECK_THAT(r.output, Catch::Contains("MISMATCH " + table_name + ":"));
    CHECK_THAT(r.output, Catch::Contains("{\"table\":\"" + table_name + "\""));
}

TEST_CASE(
    "copy a legacy database with reasoning columns: they reach the target (docs/design.md §9)",
    "[migrations][copy][postgres][reasoning]")
{
    REQUIRE_POSTGRES_TARGET();
    test::temp_dir dir;
    auto const source = legacy_source(dir, 200);
    std::string id;
    {
        storage::database db(source, storage::open_mode::read_write);
        db.exec("ALTER TABLE messages ADD COLUMN reasoning TEXT");
        db.exec("ALTER TABLE messages ADD COLUMN partial_reasoning TEXT");
        id = test::query_one(db, "SELECT min(id) FROM messages WHERE role = 'assistant'").value();
        db.exec(
            "UPDATE messages SET reasoning = 'pensé 🤔', partial_reasoning = 'half' WHERE id "
            "= '" +
            id + "'");
    }
    auto const target = dir.db("target");
    storage::database from(source, storage::open_mode::read_write);
    storage::database to(target, storage::open_mode::read_write);
    auto const r = copy_database(from, to, {.batch_size = 64});
    CHECK(r.ok());
    CHECK(test::query_one(
              to, "SELECT reasoning || '|' || partial_reasoning FROM messages WHERE id = '" + id +
                      "'") == std::optional<std::string>("pensé 🤔|half"));
    run_up(to, {.batch_size = 100});
    CHECK(verify(to).ok());
    CHECK(cleanup(to) == 200);
    CHECK(test::query_one(to, "SELECT reasoning FROM messages WHERE id = '" + id + "'") ==
          std::optional<std::string>("pensé 🤔"));
}
