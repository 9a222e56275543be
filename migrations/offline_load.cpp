#include "detail/offline_load.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace chatstream::migrations::detail
{
namespace
{

// The mode of the load. A rollback journal only holds the original content
// of pages that existed before the transaction; a bulk load mostly appends
// new pages, so little is journaled, where WAL writes every page twice (log,
// then checkpoint). TRUNCATE rather than DELETE: no unlink per commit.
// Crash-safe like WAL: a kill leaves a hot journal that the next opener
// rolls back. synchronous stays what the connection has (NORMAL).
constexpr char const* load_journal = "truncate";

std::string journal_mode(storage::database& db, char const* set = nullptr)
{
    auto& q = db.prepare(set ? fmt::format("PRAGMA journal_mode={}", set)
                             : std::string("PRAGMA journal_mode"));
    std::string mode;
    if (q.executeStep())
        mode = q.getColumn(0).getString();
    q.reset();
    return mode;
}

} // namespace

void pause_point(char const* point)
{
    static char const* const want = std::getenv("CHATSTREAM_TEST_PAUSE_AT");
    if (!want || std::strcmp(want, point) != 0)
        return;
    spdlog::warn("test pause at {}", point);
    std::this_thread::sleep_for(std::chrono::seconds(3));
}

bool try_truncate_journal(storage::database& db, char const* who)
{
    if (db.is_postgres())
        return false;
    std::string mode;
    try
    {
        mode = journal_mode(db, load_journal);
    }
    catch (std::exception const& e)
    {
        spdlog::info("migration={} another connection has the database open ({}); WAL kept", who,
                     e.what());
        return false;
    }
    if (mode != load_journal)
    {
        spdlog::info("migration={} journal mode stays {} (another connection?)", who, mode);
        return false;
    }
    // Reads of the old rows through the mapping, not copied page by page.
    db.exec("PRAGMA mmap_size=2147418112");
    spdlog::info("migration={} offline: {} journal", who, load_journal);
    return true;
}

void back_to_wal(storage::database& db) noexcept
{
    db.try_exec("PRAGMA mmap_size=0");
    db.try_exec("PRAGMA journal_mode=WAL");
}

int restore_deferred_indexes(storage::database& db)
{
    if (db.is_postgres() || !db.has_table(deferred_indexes_table))
        return 0;
    std::vector<std::string> sqls;
    {
        auto& q =
            db.prepare(fmt::format("SELECT sql FROM {} ORDER BY name", deferred_indexes_table));
        while (q.executeStep())
            sqls.push_back(q.getColumn(0).getString());
        q.reset();
    }
    if (!sqls.empty())
        spdlog::info("migration=001 building {} deferred indexes", sqls.size());
    // Sorting the whole column once (CREATE INDEX) instead of one random
    // insertion per row is the point of deferring them.
    for (auto const& sql : sqls)
    {
        db.exec(sql);
        pause_point("index_build");
    }
    db.exec(fmt::format("DROP TABLE {}", deferred_indexes_table));
    return static_cast<int>(sqls.size());
}

std::optional<offline_load> offline_load::try_begin(storage::database& db)
{
    if (db.is_postgres())
        return std::nullopt;
    // Leaving WAL needs the only connection to the file: SQLite answers
    // SQLITE_BUSY at once otherwise. That is the offline test.
    std::string mode;
    try
    {
        mode = journal_mode(db, load_journal);
    }
    catch (std::exception const& e)
    {
        spdlog::info(
            "migration=001 another connection has the database open ({}); online-safe settings",
            e.what());
        return std::nullopt;
    }
    if (mode != load_journal)
    {
        spdlog::info(
            "migration=001 journal mode stays {} (another connection?); online-safe settings",
            mode);
        return std::nullopt;
    }
    pause_point("journal");
    offline_load load;
    try
    {
        // 001 checks every message's conversation and user itself, inside
        // the batch's write transaction; the message is the row being read.
        db.exec("PRAGMA foreign_keys=OFF");
        // Read the legacy rows through a mapping instead of copying every
        // page into the page cache (memmove was the top user symbol; 0.5 s
        // of 3 s on 200k heavy messages). Writes still go through the
        // journal, so crash safety is unchanged. SQLite caps it at ~2 GB.
        db.exec("PRAGMA mmap_size=2147418112");
        // Dropping the indexes and stashing their SQL is one transaction,
        // so a kill leaves either both or neither. A stash left by a killed
        // load already holds what is missing.
        storage::transaction tx(db);
        db.exec(
            fmt::format("CREATE TABLE IF NOT EXISTS {}(name TEXT PRIMARY KEY, sql TEXT NOT NULL)",
                        deferred_indexes_table));
        std::vector<std::pair<std::string, std::string>> indexes;
        {
            // Secondary indexes only: the primary key and UNIQUE constraints
            // (sql IS NULL, autoindexes) carry ON CONFLICT and stay.
            auto& q =
                db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                           "AND tbl_name IN ('attachments', 'tool_calls') AND sql IS NOT NULL "
                           "AND sql NOT LIKE 'CREATE UNIQUE%'");
            while (q.executeStep())
                indexes.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getString());
            q.reset();
        }
        for (auto const& [name, sql] : indexes)
        {
            auto& ins = db.prepare(
                fmt::format("INSERT INTO {}(name, sql) VALUES(?, ?) ON CONFLICT DO NOTHING",
                            deferred_indexes_table));
            ins.bind(1, name);
            ins.bind(2, sql);
            ins.exec();
            db.exec("DROP INDEX \"" + name + "\"");
        }
        pause_point("drop");
        tx.commit();
        spdlog::info("migration=001 offline bulk load: {} journal, {} secondary indexes deferred",
                     load_journal, indexes.size());
    }
    catch (...)
    {
        load.end(db);
        throw;
    }
    return load;
}

void offline_load::finish(storage::database& db)
{
    restore_deferred_indexes(db);
}

void offline_load::end(storage::database& db) noexcept
{
    if (ended_)
        return;
    ended_ = true;
    db.try_exec("PRAGMA foreign_keys=ON");
    db.try_exec("PRAGMA mmap_size=0");
    pause_point("wal");
    // Back to the mode every other opener expects (storage opens in WAL).
    db.try_exec("PRAGMA journal_mode=WAL");
}

} // namespace chatstream::migrations::detail
