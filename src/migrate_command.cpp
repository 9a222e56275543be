// `chatstream migrate ...`: schema and data migrations.
#include "commands.hpp"

#include "chatstream/migrations/copy.hpp"
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/migrations/runner.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/database.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <memory>
#include <unistd.h>

namespace chatstream::app
{
namespace
{

struct migrate_args
{
    std::string db = "./data/chatstream.db";
    bool json = false;
    std::size_t batch_size = migrations::default_batch_size;
    int pause_ms = 0;
    std::string rollback_id;
    std::string copy_from;
    std::string copy_to;
    std::size_t copy_batch_size = migrations::default_copy_batch_size;
};

// Ctrl-C during `up` stops after the current batch, at a checkpoint.
std::atomic<bool> stop_requested{false};
extern "C" void on_signal(int)
{
    stop_requested = true;
}

// Every command but `up` needs an existing database: opening a missing path
// would silently create an empty one.
storage::database open_existing(std::string const& location)
{
    auto const where = storage::parse_location(location);
    if (where.dialect == storage::dialect::sqlite && !std::filesystem::exists(where.target))
        throw migrations::migration_error("no database at " + where.target +
                                          " (run `chatstream migrate up` first)");
    // A PostgreSQL database exists by definition once we can connect; an
    // empty one reads as "no migrations table" below.
    return storage::database(location, storage::open_mode::read_write);
}

char const* to_string(migrations::normalize::start_kind k)
{
    using migrations::normalize::start_kind;
    switch (k)
    {
    case start_kind::not_applicable:
        return "not applicable (no legacy columns)";
    case start_kind::already_done:
        return "already completed";
    case start_kind::fresh:
        return "started";
    case start_kind::resumed:
        return "resumed from checkpoint";
    }
    return "?";
}

int migrate_up(migrate_args const& a)
{
    ensure_data_dir(a.db);
    storage::database db(a.db, storage::open_mode::read_write);
    auto const kind = migrations::detect_kind(db);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    migrations::up_options o;
    o.batch_size = a.batch_size;
    o.pause = std::chrono::milliseconds(a.pause_ms);
    o.on_progress = migrations::progress_reporter(isatty(STDERR_FILENO) != 0);
    o.stop = &stop_requested;
    auto const r = migrations::run_up(db, o);
    fmt::print("database: {} ({}); schema migrations applied: {}\n",
               migrations::redact_location(a.db), migrations::to_string(kind),
               r.schema_applied.size());
    fmt::print("001 {}: {}", migrations::normalize_name, to_string(r.start));
    if (r.processed || r.start == migrations::normalize::start_kind::fresh ||
        r.start == migrations::normalize::start_kind::resumed)
        fmt::print(", {} messages in {:.2f}s ({:.0f} msg/s), {} quarantined", r.processed,
                   r.seconds, r.seconds > 0 ? static_cast<double>(r.processed) / r.seconds : 0.0,
                   r.quarantined);
    fmt::print("\n");
    if (r.stopped)
    {
        fmt::print("stopped at a checkpoint; run `migrate up` again to resume\n");
        return 1;
    }
    if (auto q = migrations::quarantined_count(db, migrations::normalize_id))
        fmt::print("{} message(s) quarantined in migration_errors (see `migrate status`)\n", q);
    return 0;
}

int migrate_status(migrate_args const& a)
{
    auto db = open_existing(a.db);
    if (a.json)
    {
        fmt::print("{}\n", migrations::status_json(db));
        return 0;
    }
    fmt::print("database: {} ({})\n", migrations::redact_location(a.db),
               migrations::to_string(migrations::detect_kind(db)));
    for (auto const& s : migrations::read_schema_status(db))
        fmt::print("schema {:04d} {:<40} {}\n", s.version, s.name,
                   s.applied ? "applied" : "pending");
    for (auto const& m : migrations::read_migrations(db))
    {
        fmt::print("data   {} {:<40} phase={} status={} processed={}/{} success={} errors={} "
                   "cursor={}{}\n",
                   m.id, m.name, m.phase, m.status, m.processed, m.total_records.value_or(0),
                   m.success_count, m.error_count, m.cursor.value_or("-"),
                   m.error ? " error=" + *m.error : "");
    }
    return 0;
}

int migrate_verify(migrate_args const& a)
{
    auto db = open_existing(a.db);
    auto const r = migrations::verify(db);
    if (!r.legacy_columns)
    {
        fmt::print("no legacy columns: nothing to verify (cleanup done or a new database)\n");
        return 0;
    }
    for (auto const& m : r.mismatches)
        fmt::print("MISMATCH {}: {}\n", m.message_id, m.detail);
    if (r.mismatch_count > static_cast<std::int64_t>(r.mismatches.size()))
        fmt::print("... and {} more\n",
                   r.mismatch_count - static_cast<std::int64_t>(r.mismatches.size()));
    fmt::print("verify: {} messages, {} attachments, {} tool calls expected; {} mismatch(es); {} "
               "quarantined "
               "(kept in migration_errors)\n",
               r.messages, r.expected_attachments, r.expected_tool_calls, r.mismatch_count,
               r.quarantined);
    return r.ok() ? 0 : 1;
}

int migrate_cleanup(migrate_args const& a)
{
    auto db = open_existing(a.db);
    auto const start = std::chrono::steady_clock::now();
    auto const n = migrations::cleanup(db);
    double const s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("002 {}: {} messages rewritten without legacy columns in {:.2f}s ({:.0f} msg/s)\n",
               migrations::cleanup_name, n, s, s > 0 ? static_cast<double>(n) / s : 0.0);
    return 0;
}

int migrate_rollback(migrate_args const& a)
{
    if (a.rollback_id != migrations::normalize_id && a.rollback_id != migrations::cleanup_id)
    {
        fmt::print(stderr, "unknown data migration '{}' (known: 001, 002)\n", a.rollback_id);
        return 2;
    }
    auto db = open_existing(a.db);
    auto const n = migrations::rollback(db, a.rollback_id);
    fmt::print("001 rolled back: {} rows deleted; `migrate up` redoes it\n", n);
    return 0;
}

int migrate_copy(migrate_args const& a)
{
    if (storage::parse_location(a.copy_from).dialect != storage::dialect::sqlite)
        throw migrations::migration_error("--from must be a SQLite database (sqlite:PATH)");
    auto const from = storage::parse_location(a.copy_from).target;
    if (!std::filesystem::exists(from))
        throw migrations::migration_error("no database at " + from);
    if (storage::parse_location(a.copy_to).dialect != storage::dialect::postgres)
        throw migrations::migration_error("--to must be a PostgreSQL URI (postgres://…)");
    // query_only: the source is never written, not even switched to WAL.
    storage::database source(a.copy_from, storage::open_mode::read_only);
    storage::database target(a.copy_to, storage::open_mode::read_write);
    migrations::copy_options o;
    o.batch_size = a.copy_batch_size;
    auto const report = migrations::copy_database(source, target, o);
    fmt::print("{}\n", report.json(from, a.copy_to));
    if (!report.ok())
    {
        for (auto const& t : report.tables)
            if (!t.ok())
                fmt::print(stderr,
                           "MISMATCH {}: source {} rows sha256 {}, target {} rows sha256 {}\n",
                           t.table, t.source_rows, t.source_sha256, t.target_rows, t.target_sha256);
        return 1;
    }
    return 0;
}

// Refusals are expected outcomes: print them without a stack of log noise.
int guarded(int (*f)(migrate_args const&), migrate_args const& a)
{
    try
    {
        return f(a);
    }
    catch (migrations::migration_error const& e)
    {
        fmt::print(stderr, "refused: {}\n", e.what());
        return 1;
    }
}

} // namespace

void register_migrate_command(CLI::App& app, action& run)
{
    auto args = std::make_shared<migrate_args>();
    auto* migrate = app.add_subcommand("migrate", "schema and data migrations");
    migrate->add_option("--db", args->db, "database: a path, sqlite:PATH or postgres://…")
        ->capture_default_str();
    migrate->require_subcommand(1);

    auto* up = migrate->add_subcommand("up", "apply schema migrations, then run data migrations");
    up->add_option("--batch-size", args->batch_size, "messages per transaction")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    up->add_option("--pause-ms", args->pause_ms,
                   "sleep between batches (be gentle with a live database)")
        ->check(CLI::Range(0, 60000));
    up->callback([&run, args] { run = [args] { return guarded(migrate_up, *args); }; });

    auto* status = migrate->add_subcommand("status", "state of every migration");
    status->add_flag("--json", args->json, "machine-readable output");
    status->callback([&run, args] { run = [args] { return guarded(migrate_status, *args); }; });

    auto* verify = migrate->add_subcommand(
        "verify", "compare legacy arrays with the tables; exit 1 on mismatch");
    verify->callback([&run, args] { run = [args] { return guarded(migrate_verify, *args); }; });

    auto* cleanup = migrate->add_subcommand("cleanup", "002: verify, then drop the legacy columns");
    cleanup->callback([&run, args] { run = [args] { return guarded(migrate_cleanup, *args); }; });

    auto* copy = migrate->add_subcommand(
        "copy", "copy a SQLite database into PostgreSQL, resumable, verified");
    copy->add_option("--from", args->copy_from, "source: sqlite:PATH (or a path)")->required();
    copy->add_option("--to", args->copy_to, "target: postgres://… (empty, or a copy in progress)")
        ->required();
    copy->add_option("--batch-size", args->copy_batch_size, "source rows per target transaction")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    copy->callback([&run, args] { run = [args] { return guarded(migrate_copy, *args); }; });

    auto* rollback =
        migrate->add_subcommand("rollback", "undo a data migration not yet cleaned up");
    rollback->add_option("id", args->rollback_id, "migration id (001)")->required();
    rollback->callback([&run, args] { run = [args] { return guarded(migrate_rollback, *args); }; });
}

} // namespace chatstream::app
