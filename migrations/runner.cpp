#include "chatstream/migrations/runner.hpp"

#include "chatstream/migrations/schema_migrator.hpp"
#include "detail/offline_load.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace chatstream::migrations
{
namespace
{

using clock = std::chrono::steady_clock;

// Offline, batches share a transaction up to this many messages (see run_up).
constexpr std::size_t offline_transaction_messages = 500000;

double seconds_since(clock::time_point t)
{
    return std::chrono::duration<double>(clock::now() - t).count();
}

// Rate of this run and ETA of what is left.
progress sample(migration_state const& s, std::int64_t processed_now, double elapsed, bool done)
{
    progress p;
    p.migration_id = s.id;
    p.processed = s.processed;
    p.total = s.total_records.value_or(s.processed);
    p.quarantined = s.error_count;
    p.rate = elapsed > 0 ? static_cast<double>(processed_now) / elapsed : 0;
    p.done = done;
    if (p.rate > 0 && p.total > p.processed)
        p.eta_s = static_cast<double>(p.total - p.processed) / p.rate;
    if (done)
        p.eta_s = 0;
    return p;
}

} // namespace

progress_reporter::progress_reporter(bool tty, std::chrono::milliseconds interval)
    : tty_(tty), interval_(interval)
{
}

void progress_reporter::operator()(progress const& p)
{
    auto const now = clock::now();
    // Redraw at most ~10x/s on a TTY; log every interval otherwise.
    auto const every = tty_ ? std::chrono::milliseconds(100) : interval_;
    if (!p.done && last_ != clock::time_point{} && now - last_ < every)
        return;
    if (last_ == clock::time_point{} && !p.done && !tty_)
    {
        last_ = now; // first sample: start the interval, log nothing yet
        return;
    }
    last_ = now;
    double const fraction =
        p.total > 0 ? std::min(1.0, static_cast<double>(p.processed) / static_cast<double>(p.total))
                    : 1.0;
    std::string eta = p.eta_s ? fmt::format("{:.0f}s", *p.eta_s) : std::string("?");
    if (tty_)
    {
        constexpr int width = 30;
        int const filled = static_cast<int>(fraction * width);
        std::fprintf(stderr,
                     "\r%s [%s%s] %3.0f%% %lld/%lld  %.0f msg/s  ETA %s  quarantined %lld%s",
                     p.migration_id.c_str(), std::string(filled, '#').c_str(),
                     std::string(width - filled, ' ').c_str(), fraction * 100,
                     static_cast<long long>(p.processed), static_cast<long long>(p.total), p.rate,
                     eta.c_str(), static_cast<long long>(p.quarantined), p.done ? "\n" : "");
        std::fflush(stderr);
    }
    else
        spdlog::info("migration={} processed={} total={} percent={:.1f} rate_msg_s={:.0f} eta_s={} "
                     "quarantined={} "
                     "done={}",
                     p.migration_id, p.processed, p.total, fraction * 100, p.rate,
                     p.eta_s ? fmt::format("{:.0f}", *p.eta_s) : "null", p.quarantined, p.done);
}

//------------------------------------------------------------------------------

up_result run_up(storage::database& db, up_options const& options)
{

    up_result result;
    result.schema_applied = apply_schema(db);
    {
        storage::transaction tx(db);
        result.start = normalize::begin(db);
        tx.commit();
    }
    if (result.start == normalize::start_kind::not_applicable ||
        result.start == normalize::start_kind::already_done)
    {
        // A load killed after its last batch cannot leave indexes behind
        // (they are built in that batch's transaction); this covers any other
        // way a stash could survive.
        storage::transaction tx(db);
        detail::restore_deferred_indexes(db);
        tx.commit();
        return result;
    }

    auto const batch = std::max<std::size_t>(1, options.batch_size);
    auto const started = clock::now();
    bool const sqlite = !db.is_postgres();
    // Offline (no other connection has the file open): the bulk-load
    // settings of detail::offline_load. Otherwise a server shares the file
    // and the online-safe settings below are all there is.
    std::optional<detail::offline_load> bulk;
    if (sqlite && options.offline)
        bulk = detail::offline_load::try_begin(db);
    if (sqlite && !bulk)
    {
        // A killed offline load's stash, now that a server may read.
        storage::transaction tx(db);
        detail::restore_deferred_indexes(db);
        tx.commit();
    }
    result.offline = bulk.has_value();
    // Bulk-load settings for this connection only (the CLI owns it): fewer
    // WAL checkpoints (with the default 1000 pages every checkpoint rewrites
    // the same hot index pages again) and a page cache that holds the new
    // tables' indexes. The WAL may grow to ~256 MB meanwhile; it is
    // truncated at the end. Measured in bench/RESULTS.md.
    // PostgreSQL has no per-connection equivalent worth setting: its WAL
    // and buffer cache are the server's.
    if (sqlite)
    {
        db.exec("PRAGMA wal_autocheckpoint=65536");
        db.exec("PRAGMA cache_size=-262144");
    }

    // A stop or a failure leaves the indexes built and the usual settings:
    // a server may open the file next.
    auto leave = [&]() noexcept
    {
        if (!bulk)
            return;
        try
        {
            storage::transaction tx(db);
            detail::restore_deferred_indexes(db);
            tx.commit();
        }
        catch (std::exception const& e)
        {
            spdlog::warn(
                "migration=001 deferred indexes not rebuilt ({}); the next `migrate up` does it",
                e.what());
        }
        bulk->end(db);
    };
    // Offline, several batches share a transaction: each commit rewrites
    // (and journals) every index page its rows touched, and with random
    // legacy ids that is most pages of the primary-key and UNIQUE indexes,
    // so fewer commits write less (1M heavy messages: 2.3 GB written at one
    // commit per 50k-message batch, 0.9 GB at one per 500k). Batches stay the unit of memory and of
    // progress. A pause between batches asks to let other connections in,
    // so then every batch commits.
    std::size_t const group = bulk && options.pause.count() == 0
                                  ? std::max<std::size_t>(1, offline_transaction_messages / batch)
                                  : 1;
    std::optional<storage::transaction> tx;
    std::size_t batches_in_tx = 0;
    for (;;)
    {
        if (options.stop && options.stop->load())
        {
            if (tx)
                tx->commit(), tx.reset();
            normalize::mark_paused(db);
            result.stopped = true;
            leave();
            break;
        }
        batch_result r;
        try
        {
            if (!tx)
                tx.emplace(db);
            r = normalize::step(db, batch);
            // The last batch and the index build commit together: 001 is
            // never "completed" while its indexes are missing.
            if (r.done && bulk)
                bulk->finish(db);
            if (r.done || ++batches_in_tx >= group)
            {
                tx->commit();
                tx.reset();
                batches_in_tx = 0;
            }
        }
        catch (std::exception const& e)
        {
            // The transaction rolled back with its checkpoint; say so on the row.
            tx.reset();
            try
            {
                normalize::mark_failed(db, e.what());
            }
            catch (...)
            {
            }
            leave();
            throw;
        }
        result.processed += static_cast<std::int64_t>(r.processed);
        result.quarantined += static_cast<std::int64_t>(r.quarantined);
        if (options.on_progress)
            if (auto s = read_migration(db, normalize_id))
                options.on_progress(sample(*s, result.processed, seconds_since(started), r.done));
        if (r.done)
            break;
        if (options.pause.count() > 0)
            std::this_thread::sleep_for(options.pause);
    }
    if (bulk)
        bulk->end(db);
    // Freshly bulk-loaded tables have no planner statistics until autovacuum
    // gets to them; verify and the server's lookups by message_id want them now.
    if (!sqlite && !result.stopped)
        db.try_exec("ANALYZE attachments, tool_calls");
    if (sqlite)
    {
        db.exec("PRAGMA wal_autocheckpoint=1000");
        db.exec("PRAGMA cache_size=-65536");
        db.try_exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    result.seconds = seconds_since(started);
    return result;
}

int restore_deferred_indexes(storage::database& db)
{
    storage::transaction tx(db);
    int const built = detail::restore_deferred_indexes(db);
    tx.commit();
    return built;
}

//------------------------------------------------------------------------------

online_backfill::online_backfill(storage::writer& writer, online_options options)
    : writer_(writer), options_(std::move(options))
{
}

online_backfill::~online_backfill()
{
    stop();
}

void online_backfill::start()
{
    std::lock_guard lock(mutex_);
    if (started_)
        return;
    started_ = true;
    thread_ = std::thread([this] { run(); });
}

void online_backfill::stop()
{
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
        thread_.join();
}

void online_backfill::wait()
{
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return finished_.load() || !started_; });
}

std::string online_backfill::error() const
{
    std::lock_guard lock(mutex_);
    return error_;
}

void online_backfill::run()
{
    std::string error;
    try
    {
        normalize::start_kind start{};
        writer_.run_sync(
            [&](storage::database& db)
            {
                // A killed offline load's deferred indexes: the server reads now.
                detail::restore_deferred_indexes(db);
                start = normalize::begin(db);
            });
        if (start == normalize::start_kind::fresh || start == normalize::start_kind::resumed)
        {
            spdlog::info("migration=001 online backfill {} (batch {})",
                         start == normalize::start_kind::fresh ? "started" : "resumed",
                         options_.batch_size);
            auto const started = clock::now();
            auto const batch = std::max<std::size_t>(1, options_.batch_size);
            for (;;)
            {
                if (stop_)
                {
                    writer_.run_sync([](storage::database& db) { normalize::mark_paused(db); });
                    spdlog::info("migration=001 online backfill stopped at a checkpoint");
                    break;
                }
                // The batch runs on the writer thread inside its transaction;
                // its rows and checkpoint commit together (job savepoint).
                batch_result r;
                std::optional<migration_state> state;
                writer_.run_sync(
                    [&](storage::database& db)
                    {
                        r = normalize::step(db, batch);
                        state = read_migration(db, normalize_id);
                    });
                processed_ += static_cast<std::int64_t>(r.processed);
                if (options_.on_progress && state)
                    options_.on_progress(
                        sample(*state, processed_, seconds_since(started), r.done));
                if (r.done)
                    break;
                if (options_.pause.count() > 0)
                {
                    std::unique_lock lock(mutex_);
                    cv_.wait_for(lock, options_.pause, [this] { return stop_.load(); });
                }
            }
        }
    }
    catch (std::exception const& e)
    {
        error = e.what();
        spdlog::error("migration=001 online backfill failed: {}", error);
        try
        {
            writer_.run_sync([&](storage::database& db) { normalize::mark_failed(db, error); });
        }
        catch (std::exception const&)
        {
            // The writer is gone or failing too; the row stays "running" and
            // the next start resumes from the last checkpoint anyway.
        }
    }
    // on_done first: whoever wait()s then sees its effects.
    if (options_.on_done)
        options_.on_done(error);
    {
        std::lock_guard lock(mutex_);
        error_ = error;
        finished_ = true;
    }
    cv_.notify_all();
}

} // namespace chatstream::migrations
