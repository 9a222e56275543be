#include "chatstream/migrations/schema_migrator.hpp"

#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::migrations;

TEST_CASE("schema runner is idempotent on a fresh database", "[migrations][schema]")
{
    test::temp_dir dir;
    storage::database db(dir.db("a.db"), storage::open_mode::read_write);
    CHECK(detect_kind(db) == database_kind::empty);
    auto first = apply_schema(db);
    CHECK(first.size() == schema_files(db.dialect()).size());
    CHECK(detect_kind(db) == database_kind::managed);
    CHECK(apply_schema(db).empty());
    CHECK_FALSE(db.has_column("messages", "tool_calls")); // legacy-only file skipped
    for (auto const& s : read_schema_status(db))
        CHECK(s.applied);
}

TEST_CASE("schema runner refuses a changed checksum", "[migrations][schema]")
{
    test::temp_dir dir;
    storage::database db(dir.db("a.db"), storage::open_mode::read_write);
    apply_schema(db);
    db.exec("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 2");
    CHECK_THROWS_AS(apply_schema(db), schema_error);
    CHECK_THROWS_AS(check_schema_checksums(db), schema_error);
}

TEST_CASE("schema runner rolls back a failing file", "[migrations][schema]")
{
    test::temp_dir dir;
    storage::database db(dir.db("a.db"), storage::open_mode::read_write);
    auto files = detail::parse_schema_files(
        {{"0001_ok.sql", "CREATE TABLE t1(x INTEGER);"},
         {"0002_bad.sql", "CREATE TABLE t2(x INTEGER); SELECT * FROM nope;"}});
    CHECK_THROWS(detail::apply_schema_files(db, files));
    CHECK(db.has_table("t1"));
    CHECK_FALSE(db.has_table("t2")); // the failing file left nothing behind
}

TEST_CASE("a foreign database is refused", "[migrations][schema]")
{
    test::temp_dir dir;
    storage::database db(dir.db("a.db"), storage::open_mode::read_write);
    db.exec("CREATE TABLE something_else(x INTEGER)");
    CHECK(detect_kind(db) == database_kind::foreign);
    CHECK_THROWS_AS(apply_schema(db), schema_error);
}

TEST_CASE("both dialects ship the same schema migrations, version for version",
          "[migrations][schema]")
{
    auto const& sqlite = schema_files(storage::dialect::sqlite);
    auto const& postgres = schema_files(storage::dialect::postgres);
    REQUIRE(sqlite.size() == postgres.size());
    for (std::size_t i = 0; i < sqlite.size(); ++i)
    {
        CHECK(sqlite[i].version == postgres[i].version);
        CHECK(sqlite[i].name == postgres[i].name);
        CHECK(sqlite[i].legacy_only == postgres[i].legacy_only);
        CHECK(sqlite[i].checksum != postgres[i].checksum); // each dialect's own text
    }
}

TEST_CASE("ADD COLUMN IF NOT EXISTS on SQLite: dropped when the column is there, plain otherwise",
          "[migrations][schema]")
{
    test::temp_dir dir;
    storage::database db(dir.file("a.db"), storage::open_mode::read_write);
    db.exec("CREATE TABLE t(a TEXT)");
    auto const sql = std::string("-- a comment\n"
                                 "ALTER TABLE t ADD COLUMN IF NOT EXISTS a TEXT;\n"
                                 "ALTER TABLE t ADD COLUMN IF NOT EXISTS b INTEGER;\n"
                                 "CREATE TABLE IF NOT EXISTS u(x INTEGER);\n");
    CHECK(detail::sqlite_add_columns_if_missing(db, sql) ==
          "-- a comment\nALTER TABLE t ADD COLUMN b INTEGER;\nCREATE TABLE IF NOT EXISTS u(x "
          "INTEGER);\n");
    db.exec(detail::sqlite_add_columns_if_missing(db, sql));
    CHECK(db.has_column("t", "b"));
    CHECK(detail::sqlite_add_columns_if_missing(db, sql) ==
          "-- a comment\nCREATE TABLE IF NOT EXISTS u(x INTEGER);\n");
}
