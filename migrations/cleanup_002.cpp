#include "chatstream/migrations/data_migration.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/storage/legacy.hpp"
#include "chatstream/storage/repositories.hpp"
#include "detail/legacy_scan.hpp"
#include "detail/offline_load.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

// Migration 002 (drop the legacy columns) and the rollback of 001 before it.
namespace chatstream::migrations
{

using namespace detail;

namespace
{

constexpr char const* legacy_columns[] = {"attachments", "tool_calls", "partial_tool_calls"};

bool is_legacy_column(std::string const& name)
{
    for (auto const* c : legacy_columns)
        if (name == c)
            return true;
    return false;
}

// CREATE TABLE for the rebuilt messages: every current column except the
// legacy ones (so columns added by later schema files survive), with the
// constraints of the normalized schema (cascading foreign keys).
std::string rebuilt_messages_sql(storage::database& db, std::string& column_list)
{
    std::string cols;
    auto& q = db.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM "
                         "pragma_table_info('messages') ORDER BY cid");
    while (q.executeStep())
    {
        auto const name = q.getColumn(0).getString();
        if (is_legacy_column(name))
            continue;
        auto const quoted = "\"" + name + "\"";
        if (!column_list.empty())
            column_list += ", ";
        column_list += quoted;
        std::string def = "  " + quoted + " " + q.getColumn(1).getString();
        if (q.getColumn(4).getInt() == 1)
            def += " PRIMARY KEY";
        if (q.getColumn(2).getInt() == 1)
            def += " NOT NULL";
        if (!q.getColumn(3).isNull())
            def += " DEFAULT " + q.getColumn(3).getString();
        if (name == "conversation_id")
            def += " REFERENCES conversations(id) ON DELETE CASCADE";
        if (name == "user_id")
            def += " REFERENCES users(id) ON DELETE CASCADE";
        if (name == "role")
            def += " CHECK(role IN ('user','assistant','system'))";
        cols += (cols.empty() ? "" : ",\n") + def;
    }
    q.reset();
    return "CREATE TABLE messages_rebuilt(\n" + cols + "\n)";
}

// Marks 002 done and 001 complete; in the caller's transaction.
void mark_cleaned_up(storage::database& db, std::int64_t messages)
{
    set_phase(db, cleanup_id, cleanup_name, "complete", "completed", true);
    auto& q = db.prepare("UPDATE migrations SET phase = 'complete', updated_at = ?2 WHERE id = ?1");
    q.bind(1, normalize_id);
    q.bind(2, core::now_ms());
    q.exec();
    auto& p =
        db.prepare("UPDATE migrations SET processed = ?2, success_count = ?2, total_records = ?2 "
                   "WHERE id = ?1");
    p.bind(1, cleanup_id);
    p.bind(2, messages);
    p.exec();
}

void mark_cleanup_failed(storage::database& db, std::string const& error)
{
    auto& q = db.prepare(
        "UPDATE migrations SET status = 'failed', error = ?2, updated_at = ?3 WHERE id = ?1");
    q.bind(1, cleanup_id);
    q.bind(2, error);
    q.bind(3, core::now_ms());
    q.exec();
}

// On SQLite inside the rebuild's write transaction: nothing can change
// between the check and the drop.
void require_verified(storage::database& db)
{
    // CPU-bound conversion: one range per core (at most 4), SQLite only.
    unsigned const threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    auto const report = db.is_postgres() ? verify(db, 5) : verify_frozen(db, 5, threads);
    if (!report.ok())
        throw migration_error(
            fmt::format("verify found {} mismatch(es) (first: {}: {}); refusing to drop the legacy "
                        "columns",
                        report.mismatch_count, report.mismatches.front().message_id,
                        report.mismatches.front().detail));
}

// PostgreSQL has transactional DDL and a real DROP COLUMN (a catalog change,
// no rewrite), so no rebuild: one transaction drops the three columns and
// swaps the legacy foreign keys for cascading ones (docs/design.md §4). Adding a
// foreign key validates every row, so an orphan legacy message rolls it
// all back, like SQLite's foreign_key_check after the rebuild.
std::int64_t cleanup_postgres(storage::database& db)
{
    std::int64_t messages = 0;
    try
    {
        storage::transaction tx(db);
        messages = count_messages(db);
        std::vector<std::string> fks;
        {
            auto& q = db.prepare("SELECT conname FROM pg_catalog.pg_constraint "
                                 "WHERE conrelid = 'messages'::regclass AND contype = 'f'");
            while (q.executeStep())
                fks.push_back(q.getColumn(0).getString());
            q.reset();
        }
        std::string alter = "ALTER TABLE messages DROP COLUMN attachments, DROP COLUMN tool_calls, "
                            "DROP COLUMN partial_tool_calls";
        for (auto const& name : fks)
            alter += ", DROP CONSTRAINT \"" + name + "\"";
        alter += ", ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY(conversation_id) "
                 "REFERENCES conversations(id) ON DELETE CASCADE"
                 ", ADD CONSTRAINT messages_user_id_fkey FOREIGN KEY(user_id) REFERENCES users(id) "
                 "ON DELETE CASCADE";
        try
        {
            db.exec(alter);
        }
        catch (storage::database_error const& e)
        {
            if (e.sqlstate() == "23503") // foreign_key_violation
                throw migration_error(
                    std::string("a message references a missing conversation or user; cleanup "
                                "rolled back: ") +
                    e.what());
            throw;
        }
        mark_cleaned_up(db, messages);
        tx.commit();
    }
    catch (std::exception const& e)
    {
        mark_cleanup_failed(db, e.what());
        throw;
    }
    return messages;
}

// SQLite's 12-step ALTER: foreign keys off (outside any transaction), verify
// and copy into the new shape in one write transaction, swap, re-create
// indexes and triggers, check.
std::int64_t cleanup_sqlite(storage::database& db, bool offline)
{
    // Alone on the file, the rebuild runs on a rollback journal: the copy
    // goes to new pages, which a rollback journal does not hold, where WAL
    // writes every page twice (bench/RESULTS.md). A kill leaves a hot
    // journal the next opener rolls back, as during 001's offline load.
    bool const truncated = offline && try_truncate_journal(db, cleanup_id);
    // The freed pages of the old table hold nothing that does not live on
    // in the rebuilt one (and the arrays in attachments, tool_calls and
    // migration_errors), so zeroing them (Debian builds SECURE_DELETE) is
    // pure I/O: 250 of 610 MB written on 200k heavy messages. FAST still
    // clears what it rewrites anyway.
    auto pragma = [&](char const* name)
    {
        auto& q = db.prepare(std::string("PRAGMA ") + name);
        std::int64_t v = 0;
        if (q.executeStep())
            v = q.getColumn(0).getInt64();
        q.reset();
        return v;
    };
    auto const secure_delete = pragma("secure_delete");
    auto const cache_size = pragma("cache_size");
    db.exec("PRAGMA secure_delete=FAST");
    // The rebuilt table's new pages stay in the cache until the commit
    // instead of spilling one by one (the same 256 MB as 001's `up`).
    db.exec("PRAGMA cache_size=-262144");
    db.exec("PRAGMA foreign_keys=OFF");
    auto restore = [&]() noexcept
    {
        db.try_exec("PRAGMA foreign_keys=ON");
        db.try_exec(fmt::format("PRAGMA secure_delete={}", secure_delete));
        db.try_exec(fmt::format("PRAGMA cache_size={}", cache_size));
        pause_point("cleanup_wal");
        if (truncated)
            back_to_wal(db);
    };
    std::int64_t copied = 0;
    try
    {
        storage::transaction tx(db);
        auto const started = std::chrono::steady_clock::now();
        require_verified(db);
        auto const verified = std::chrono::steady_clock::now();
        std::vector<std::string> dependents;
        {
            auto& q = db.prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'messages' "
                                 "AND type IN ('index','trigger') AND sql IS NOT NULL");
            while (q.executeStep())
                dependents.push_back(q.getColumn(0).getString());
            q.reset();
        }
        std::string columns;
        db.exec("DROP TABLE IF EXISTS messages_rebuilt");
        db.exec(rebuilt_messages_sql(db, columns));
        copied = db.prepare("INSERT INTO messages_rebuilt(" + columns + ") SELECT " + columns +
                            " FROM messages ORDER BY rowid")
                     .exec();
        pause_point("cleanup_copy");
        db.exec("DROP TABLE messages");
        db.exec("ALTER TABLE messages_rebuilt RENAME TO messages");
        // Secondary indexes after the copy: one sort each.
        for (auto const& sql : dependents)
            db.exec(sql);
        {
            // Only the rebuilt table: the rest kept its rows and the ids they
            // reference (0.30 s for every table, 0.12 s for this one, on 200k
            // heavy messages).
            auto& check = db.prepare("PRAGMA foreign_key_check(messages)");
            bool const bad = check.executeStep();
            std::string const detail =
                bad ? fmt::format("foreign_key_check after rebuild: row {} of {} references a "
                                  "missing {}; cleanup rolled back",
                                  check.getColumn(1).getString(), check.getColumn(0).getString(),
                                  check.getColumn(2).getString())
                    : std::string();
            check.reset();
            if (bad)
                throw migration_error(detail);
        }
        mark_cleaned_up(db, copied);
        pause_point("cleanup_commit");
        tx.commit();
        // Where the time went, for whoever sizes a maintenance window.
        auto const secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
        spdlog::info("migration=002 verify {:.2f}s, rebuild and commit {:.2f}s",
                     secs(verified - started), secs(std::chrono::steady_clock::now() - verified));
    }
    catch (std::exception const& e)
    {
        restore();
        mark_cleanup_failed(db, e.what());
        throw;
    }
    restore();
    // Online, the copy doubled the WAL; fold it back so the file does not stay huge.
    if (!truncated)
        db.try_exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return copied;
}

} // namespace

std::int64_t cleanup(storage::database& db, bool offline)
{
    require_bookkeeping(db);
    if (!storage::has_legacy_columns(db))
    {
        auto const state = read_migration(db, cleanup_id);
        if (!state || state->status != "completed")
            set_phase(db, cleanup_id, cleanup_name, "complete", "completed", true);
        return 0;
    }
    auto const state = read_migration(db, normalize_id);
    if (!state || state->status != "completed")
        throw migration_error(
            fmt::format("migration 001 is {}; run `chatstream migrate up` until it completes "
                        "before cleanup",
                        state ? state->status + " (phase " + state->phase + ")" : "not started"));
    // Visible to other connections while the rebuild runs; a refusal or a
    // failure replaces it with `failed` and the reason.
    set_phase(db, cleanup_id, cleanup_name, "cleanup", "running", false);
    if (db.is_postgres())
    {
        try
        {
            require_verified(db);
        }
        catch (std::exception const& e)
        {
            mark_cleanup_failed(db, e.what());
            throw;
        }
        return cleanup_postgres(db);
    }
    return cleanup_sqlite(db, offline);
}

std::int64_t rollback(storage::database& db, std::string const& id)
{
    require_bookkeeping(db);
    if (id == cleanup_id)
        throw migration_error(
            "002 dropped the legacy columns; it cannot be undone (restore a backup)");
    if (id != normalize_id)
        throw migration_error("unknown data migration '" + id + "' (known: 001, 002)");
    if (!storage::has_legacy_columns(db))
        throw migration_error(
            "the legacy columns are gone (cleanup ran or the database never had them); "
            "001 can no longer be rolled back");
    auto const state = read_migration(db, normalize_id);
    if (!state)
        throw migration_error("migration 001 has not run; nothing to roll back");

    storage::transaction tx(db);
    // Only rows whose id is the one 001 derives from the natural key; rows
    // the live server created keep their own ids and stay.
    auto deleted =
        db.prepare("DELETE FROM attachments WHERE id = message_id || ':att:' || position").exec();
    deleted +=
        db.prepare("DELETE FROM tool_calls WHERE id = message_id || ':tc:' || tool_call_id").exec();
    reset_normalize(db, "backfill", "rolled-back");
    tx.commit();
    return deleted;
}

} // namespace chatstream::migrations
