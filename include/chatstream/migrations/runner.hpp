#pragma once
/// @file runner.hpp
/// Drives the data migrations: `run_up` for the CLI (one connection, one
/// transaction per batch) and `online_backfill` for `serve --migrate`, which
/// runs migration 001 batch by batch as jobs on the server's single writer so
/// the backfill interleaves with streaming writes.
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/storage/writer.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace chatstream::migrations
{

/// A progress sample, taken after every committed batch.
struct progress
{
    std::string migration_id;
    std::int64_t processed = 0;   ///< since the migration started (checkpointed)
    std::int64_t total = 0;       ///< messages when the run began
    std::int64_t quarantined = 0; ///< error_count so far
    double rate = 0;              ///< messages/s in this run
    std::optional<double> eta_s;  ///< seconds left at the current rate
    bool done = false;
};

using progress_callback = std::function<void(progress const&)>;

/// Renders progress for humans: a redrawn bar with rate and ETA on a TTY,
/// otherwise one structured spdlog line every @p interval (and at the end).
/// Not thread-safe; call from the thread that drives the migration.
class progress_reporter
{
public:
    /// @param tty draw the bar on stderr (pass `isatty(STDERR_FILENO)`).
    explicit progress_reporter(bool tty,
                               std::chrono::milliseconds interval = std::chrono::seconds(2));
    void operator()(progress const& p);

private:
    bool tty_;
    std::chrono::milliseconds interval_;
    std::chrono::steady_clock::time_point last_{};
};

struct up_options
{
    std::size_t batch_size = default_batch_size;
    /// Sleep between batches, to be gentle with a database other processes use.
    std::chrono::milliseconds pause{0};
    progress_callback on_progress;
    /// When set and true, stop after the current batch (status -> pending).
    std::atomic<bool> const* stop = nullptr;
    /// SQLite: take the offline bulk path (rollback journal, deferred
    /// secondary indexes, foreign keys checked by 001 itself) when no other
    /// connection has the file open. false keeps the online-safe settings.
    bool offline = true;
};

struct up_result
{
    std::vector<int> schema_applied;
    normalize::start_kind start = normalize::start_kind::not_applicable;
    std::int64_t processed = 0;   ///< messages processed by this run
    std::int64_t quarantined = 0; ///< messages quarantined by this run
    double seconds = 0;           ///< wall time of the data migration
    bool stopped = false;         ///< interrupted by `stop` before completion
    bool offline = false;         ///< ran the offline bulk path (SQLite, no other connection)
};

/// `migrate up`: applies pending schema files, then runs 001 to completion
/// on @p db, one IMMEDIATE transaction per batch (rows + checkpoint). A
/// completed 001 short-circuits; a crashed or stopped one resumes from its
/// checkpoint; a rolled-back one starts over.
/// @throws schema_error, migration_error, storage::database_error (the failing
///         batch is rolled back and the row is marked failed first).
up_result run_up(storage::database& db, up_options const& options = {});

//------------------------------------------------------------------------------

struct online_options
{
    /// Smaller than the CLI's: each batch is one writer job, and streaming
    /// writes queued behind it wait for it (≈ 5 ms per 500 messages).
    std::size_t batch_size = 500;
    /// Pause between batches, leaving the writer to streaming traffic.
    std::chrono::milliseconds pause{1};
    /// Called on the backfill thread after each batch; must not block long.
    progress_callback on_progress;
    /// Called once on the backfill thread when it ends: empty string on
    /// success or stop, the error text on failure. Runs before `wait()`
    /// returns and before `finished()` turns true.
    std::function<void(std::string const& error)> on_done;
};

/// Builds the secondary indexes of attachments and tool_calls that a killed
/// offline `migrate up` left stashed (docs/migrations.md "Offline bulk
/// load"), in one transaction; no-op without a stash or on PostgreSQL.
/// `serve` calls it before it listens, so it never serves without them.
/// @return indexes built.
int restore_deferred_indexes(storage::database& db);

/// Migration 001 while the server runs.
///
/// A private thread submits one writer job per batch (`normalize::step`
/// inside the writer's group transaction, so the batch and its checkpoint
/// commit atomically together with whatever streaming writes share that
/// commit) and waits for it before the next one. Reads meanwhile fall back
/// to the legacy arrays for messages not reached yet (storage repositories).
///
/// Usage from `serve --migrate` (after `apply_schema`, with the server's writer):
/// @code
///   storage::writer writer(db_path);
///   migrations::online_backfill backfill(writer, {.on_progress =
///   migrations::progress_reporter(false)}); backfill.start();          // returns at once
///   ... run the server ...
///   backfill.stop();           // before writer.stop(): finishes the batch in flight
/// @endcode
///
/// Thread-safety: `start`, `stop`, `wait` and the accessors may be called from
/// any thread. No exception leaves the backfill thread: failures are logged,
/// recorded on the `migrations` row (status failed) and passed to `on_done`.
/// Lifetime: the writer must outlive this object; the destructor calls `stop`.
class online_backfill
{
public:
    online_backfill(storage::writer& writer, online_options options = {});
    online_backfill(online_backfill const&) = delete;
    online_backfill& operator=(online_backfill const&) = delete;
    ~online_backfill();

    /// Starts the backfill thread. Calling it again is a no-op.
    void start();

    /// Asks the thread to stop after the batch in flight, waits for it, and
    /// leaves the checkpoint (status pending) so a later run resumes. Idempotent.
    void stop();

    /// Blocks until the backfill finished, failed or was stopped.
    void wait();

    bool finished() const noexcept { return finished_.load(); }
    /// Messages processed by this run.
    std::int64_t processed() const noexcept { return processed_.load(); }
    /// Failure text; empty when none (valid once finished()).
    std::string error() const;

private:
    void run();

    storage::writer& writer_;
    online_options options_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> finished_{false};
    std::atomic<std::int64_t> processed_{0};
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool started_ = false; // guarded by mutex_
    std::string error_;
    std::thread thread_;
};

} // namespace chatstream::migrations
