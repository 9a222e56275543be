// Migration benchmark: backfill (001), verify and cleanup (002) messages/s on
// generated legacy databases, next to a pure-SQL json_each backfill of the
// same database in the same run (the practical ceiling: SQLite doing the
// whole job in C, no row ever leaving the engine). One JSON line per result.
// With --db postgres://…, the same database is then generated in PostgreSQL
// and backfilled, verified and cleaned up there, and the SQLite file is
// copied into it with `migrate copy`'s engine (every table of the URI's
// schema is dropped first: point it at a scratch database or schema).
//
//   migration_bench [--messages N ...] [--dir DIR] [--batch-size B ...] [--seed S] [--db URL]
//   [--heavy]
//
// --heavy generates the heavy profile of issue 21 (bench::heavy_profile);
// bench/backfill.sh compares whole processes against both json_each
// ceilings and the DROP COLUMN reference.
//
// Default sizes: 834 (the seed's production run), 100k and 1M messages.
#include "legacy_gen.hpp"

#include "chatstream/migrations/copy.hpp"
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/migrations/runner.hpp"
#include "chatstream/migrations/schema_migrator.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

using namespace chatstream;

namespace
{

using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t)
{
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

// The same rules as 001 where SQL can express them: final arrays upserted in
// order (last occurrence wins), partial ones only where no final row exists,
// canonical JSON via json(), {} for empty arguments, malformed skipped
// (json_each raises on invalid text, hence the iif).
constexpr char const* ceiling_sql_template = R"sql(
INSERT INTO attachments(id, message_id, conversation_id, user_id, position, type, name, storage_id, mime_type,
                        size, metadata, created_at)
SELECT m.id || ':att:' || j.key, m.id, m.conversation_id, m.user_id, j.key, j.value ->> 'type', j.value ->> 'name',
       j.value ->> 'storageId', j.value ->> 'mimeType', j.value ->> 'size', json(j.value -> 'metadata'), m.created_at
  FROM messages m, json_each(iif(json_valid(m.attachments), iif(json_type(m.attachments) = 'array', m.attachments, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.attachments IS NOT NULL AND m.attachments NOT IN ('', '[]')
   AND j.value ->> 'type' IN ('image', 'file', 'audio')
ON CONFLICT DO NOTHING;

{tool_calls}
)sql";

// One upsert per tool-call array; the partial one never replaces a final row.
std::string ceiling_sql()
{
    constexpr char const* tool_calls = R"sql(
INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, tool_name, args, result,
                       text_position, is_partial, timestamp, created_at)
SELECT m.id || ':tc:' || (j.value ->> 'id'), m.id, m.conversation_id, m.user_id, j.value ->> 'id', j.value ->> 'name',
       json(coalesce(nullif(j.value ->> 'arguments', ''), '{{}}')), json(nullif(j.value ->> 'result', '')),
       j.value ->> 'textPosition', {partial}, j.value ->> 'timestamp', m.created_at
  FROM messages m, json_each(iif(json_valid(m.{column}), iif(json_type(m.{column}) = 'array', m.{column}, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.{column} IS NOT NULL AND m.{column} NOT IN ('', '[]')
   AND json_valid(coalesce(nullif(j.value ->> 'arguments', ''), '{{}}'))
   AND (nullif(j.value ->> 'result', '') IS NULL OR json_valid(j.value ->> 'result'))
ON CONFLICT(message_id, tool_call_id) DO UPDATE SET args = excluded.args, result = excluded.result,
   text_position = excluded.text_position, timestamp = excluded.timestamp{only_partial};

)sql";
    auto const final_calls = fmt::format(tool_calls, fmt::arg("column", "tool_calls"),
                                         fmt::arg("partial", 0), fmt::arg("only_partial", ""));
    auto const partial_calls =
        fmt::format(tool_calls, fmt::arg("column", "partial_tool_calls"), fmt::arg("partial", 1),
                    fmt::arg("only_partial", " WHERE tool_calls.is_partial = 1"));
    std::string sql = ceiling_sql_template;
    sql.replace(sql.find("{tool_calls}"), 12, final_calls + partial_calls);
    return sql;
}

std::int64_t count(storage::database& db, char const* table)
{
    auto& q = db.prepare(fmt::format("SELECT count(*) FROM {}", table));
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

void remove_db(std::string const& path)
{
    for (auto const* suffix : {"", "-wal", "-shm"})
        std::filesystem::remove(path + suffix);
}

void copy_db(std::string const& from, std::string const& to)
{
    remove_db(to);
    std::filesystem::copy_file(from, to);
}

void line(char const* backend, char const* phase, char const* impl, std::int64_t messages,
          std::size_t batch, double seconds, std::string const& extra = {})
{
    fmt::print(
        R"({{"bench":"migration","backend":"{}","phase":"{}","impl":"{}","messages":{},"batch_size":{},)"
        R"("seconds":{:.4f},"msg_per_s":{:.0f}{}}})"
        "\n",
        backend, phase, impl, messages, batch, seconds, seconds > 0 ? messages / seconds : 0.0,
        extra);
    std::fflush(stdout);
}

// Drops every table of the connection's schema (the bench's scratch target).
void reset_postgres(std::string const& url)
{
    storage::database db(url, storage::open_mode::read_write);
    std::vector<std::string> tables;
    auto& q = db.prepare(
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()");
    while (q.executeStep())
        tables.push_back(q.getColumn(0).getString());
    q.reset();
    for (auto const& t : tables)
        db.exec("DROP TABLE IF EXISTS \"" + t + "\" CASCADE");
}

// 001 backfill, verify and 002 cleanup on PostgreSQL, then `migrate copy`
// of the SQLite legacy file @p legacy into the emptied schema.
void run_postgres(std::string const& url, std::string const& legacy,
                  bench::legacy_gen_options const& o, std::vector<std::size_t> const& batches,
                  std::size_t copy_batch)
{
    auto const n = o.messages;
    for (auto const batch : batches)
    {
        reset_postgres(url);
        auto t = clock_type::now();
        bench::generate_legacy_db(url, o);
        line("postgres", "generate", "legacy_gen", n, 0, since(t));
        storage::database db(url, storage::open_mode::read_write);
        migrations::apply_schema(db);
        migrations::up_options uo;
        uo.batch_size = batch;
        t = clock_type::now();
        auto const r = migrations::run_up(db, uo);
        double const s = since(t);
        auto const rows = count(db, "attachments") + count(db, "tool_calls");
        line("postgres", "backfill", "chatstream", n, batch, s,
             fmt::format(R"(,"rows":{},"quarantined":{})", rows, r.quarantined));
        t = clock_type::now();
        auto const report = migrations::verify(db);
        line("postgres", "verify", "chatstream", n, batch, since(t),
             fmt::format(R"(,"ok":{})", report.ok()));
        t = clock_type::now();
        auto const dropped = migrations::cleanup(db);
        line("postgres", "cleanup", "chatstream", dropped, batch, since(t),
             R"(,"includes_verify":true)");
    }
    reset_postgres(url);
    storage::database source(legacy, storage::open_mode::read_write);
    storage::database target(url, storage::open_mode::read_write);
    migrations::copy_options co;
    co.batch_size = copy_batch;
    auto const r = migrations::copy_database(source, target, co);
    std::int64_t rows = 0;
    for (auto const& t : r.tables)
        rows += t.source_rows;
    line("postgres", "copy", "migrate_copy", n, copy_batch, r.copy_seconds + r.verify_seconds,
         fmt::format(R"(,"rows":{},"copy_seconds":{:.3f},"verify_seconds":{:.3f},"ok":{})", rows,
                     r.copy_seconds, r.verify_seconds, r.ok()));
    reset_postgres(url);
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{
        "migration_bench: 001 backfill, verify and 002 cleanup vs a pure-SQL json_each ceiling"};
    std::vector<std::int64_t> sizes;
    std::vector<std::size_t> batches;
    std::string dir = std::filesystem::temp_directory_path().string();
    std::uint64_t seed = 1;
    std::string pg_url;
    std::size_t copy_batch = migrations::default_copy_batch_size;
    app.add_option("--db", pg_url,
                   "also run on this PostgreSQL database (its schema's tables are dropped!)");
    app.add_option("--copy-batch-size", copy_batch, "migrate copy batch size")
        ->capture_default_str();
    app.add_option("--messages", sizes, "messages per generated database (repeatable)");
    app.add_option("--batch-size", batches, "001 batch sizes to run (repeatable)");
    app.add_option("--dir", dir, "scratch directory")->capture_default_str();
    app.add_option("--seed", seed)->capture_default_str();
    bool heavy = false;
    app.add_flag("--heavy", heavy,
                 "the heavy profile (issue 21): ~0.6 rows and ~1.2 KB per message");
    CLI11_PARSE(app, argc, argv);
    // Progress logs go to stdout by default; stdout is for the JSON lines.
    spdlog::set_level(spdlog::level::warn);
    if (sizes.empty())
        sizes = {834, 100'000, 1'000'000};
    if (batches.empty())
        batches = {migrations::default_batch_size};

    for (auto const n : sizes)
    {
        auto const legacy = fmt::format("{}/mb-legacy-{}.db", dir, n);
        auto const ceiling = fmt::format("{}/mb-ceiling-{}.db", dir, n);
        auto const ours = fmt::format("{}/mb-ours-{}.db", dir, n);
        auto o = heavy ? bench::heavy_profile(n, seed) : bench::legacy_gen_options{};
        o.messages = n;
        o.seed = seed;
        auto t = clock_type::now();
        auto const stats = bench::generate_legacy_db(legacy, o);
        fmt::print(
            R"({{"bench":"migration","backend":"sqlite","phase":"generate","messages":{},"with_tool_calls":{},"with_attachments":{},)"
            R"("malformed":{},"bytes":{},"seconds":{:.3f}}})"
            "\n",
            n, stats.with_tool_calls, stats.with_attachments, stats.malformed,
            std::filesystem::file_size(legacy), since(t));

        // Ceiling: same schema, one statement per target table, one transaction.
        double ceiling_s = 0;
        std::int64_t ceiling_rows = 0;
        {
            copy_db(legacy, ceiling);
            storage::database db(ceiling, storage::open_mode::read_write);
            migrations::apply_schema(db);
            t = clock_type::now();
            storage::transaction tx(db);
            db.exec(ceiling_sql());
            tx.commit();
            ceiling_s = since(t);
            ceiling_rows = count(db, "attachments") + count(db, "tool_calls");
            line("sqlite", "backfill", "sql_json_each_ceiling", n, 0, ceiling_s,
                 fmt::format(R"(,"rows":{})", ceiling_rows));
        }
        remove_db(ceiling);

        for (auto const batch : batches)
        {
            copy_db(legacy, ours);
            storage::database db(ours, storage::open_mode::read_write);
            migrations::apply_schema(db);
            migrations::up_options uo;
            uo.batch_size = batch;
            t = clock_type::now();
            auto const r = migrations::run_up(db, uo);
            double const s = since(t);
            auto const rows = count(db, "attachments") + count(db, "tool_calls");
            line("sqlite", "backfill", "chatstream", n, batch, s,
                 fmt::format(R"(,"rows":{},"quarantined":{},"vs_ceiling":{:.3f})", rows,
                             r.quarantined, s > 0 ? ceiling_s / s : 0.0));

            t = clock_type::now();
            auto const report = migrations::verify(db);
            line("sqlite", "verify", "chatstream", n, batch, since(t),
                 fmt::format(R"(,"ok":{})", report.ok()));

            // Cleanup as the CLI runs it: verify again, then the rebuild.
            t = clock_type::now();
            auto const rewritten = migrations::cleanup(db);
            line("sqlite", "cleanup", "chatstream", rewritten, batch, since(t),
                 R"(,"includes_verify":true)");
        }
        remove_db(ours);
        if (!pg_url.empty())
            run_postgres(pg_url, legacy, o, batches, copy_batch);
        remove_db(legacy);
    }
    return 0;
}
