#pragma once
/// @file writer.hpp
/// The single writer thread: owns the only write connection and group-commits
/// queued jobs, many per transaction.
#include "chatstream/storage/database.hpp"
#include "chatstream/storage/error.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

namespace chatstream::storage
{

struct writer_options
{
    database_options db;
    /// Most jobs folded into one transaction. Bounds commit latency under load.
    std::size_t max_batch = 1024;
};

/// Counters, readable from any thread.
struct writer_stats
{
    std::atomic<std::uint64_t> jobs{0};
    std::atomic<std::uint64_t> commits{0};
    std::atomic<std::uint64_t> failed_jobs{0};
    std::atomic<std::uint64_t> failed_commits{0};
    std::atomic<std::uint64_t> retried_jobs{
        0}; ///< deadlock victims (with the jobs after them) run again in the next batch
    std::atomic<std::uint64_t> last_commit_us{0};  ///< duration of the last COMMIT batch
    std::atomic<std::uint64_t> total_commit_us{0}; ///< sum of batch durations
};

/// Group-committing writer.
///
/// `submit` is thread-safe. Jobs run on the writer thread in FIFO order, each
/// inside its own SAVEPOINT of a shared IMMEDIATE transaction: a job that
/// throws rolls back only itself. Completions run on the writer thread after
/// the COMMIT that made the job durable (or failed); they must be short and
/// must not block (post to your own executor).
class writer
{
public:
    using job = std::function<void(database&)>;
    using completion = std::function<void(std::error_code)>;

    /// Opens the write connection on the calling thread and starts the writer thread.
    /// @throws database_error when the database cannot be opened.
    explicit writer(std::string const& path, writer_options const& options = {});
    writer(writer const&) = delete;
    writer& operator=(writer const&) = delete;

    /// Stops after committing every job already submitted.
    ~writer();

    /// Queues @p j; @p done (optional) is called once the job is committed or failed.
    /// After stop(), the job is refused with errc::internal.
    void submit(job j, completion done = {});

    /// Queues @p j and returns a future that is ready when it is durable.
    /// The future holds storage_error for a failed job.
    std::future<void> submit_future(job j);

    /// Runs @p j on the writer thread and waits (CLI, tests, startup only).
    /// @throws storage_error on failure.
    void run_sync(job j);

    /// Drains the queue, commits, joins the thread. Idempotent.
    void stop();

    writer_stats const& stats() const noexcept { return stats_; }
    std::size_t queue_depth() const;

private:
    struct item
    {
        job work;
        completion done;
        int attempts = 0; ///< runs that lost a deadlock (PostgreSQL)
    };

    void run();
    void commit_batch(std::deque<item>& batch);

    writer_options options_;
    database db_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<item> queue_;
    bool stopping_ = false;
    writer_stats stats_;
    std::thread thread_;
};

} // namespace chatstream::storage
