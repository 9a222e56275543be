#include "chatstream/storage/writer.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

namespace chatstream::storage
{
namespace
{

std::error_code code_of_current_exception()
{
    try
    {
        throw;
    }
    catch (database_error const& e)
    {
        // The client sees only the category; the log keeps the statement.
        spdlog::warn("writer: {}", e.what());
        return make_error_code(e.code());
    }
    catch (storage_error const& e)
    {
        return make_error_code(e.code()); // a domain refusal (not found, conflict, ...)
    }
    catch (std::exception const& e)
    {
        spdlog::warn("writer: {}", e.what());
        return make_error_code(errc::internal);
    }
}

// PostgreSQL aborted the statement to break a deadlock (or a serialization
// failure): another node's batch holds rows this job needs while waiting for
// rows of ours. Retrying inside this transaction would wait on that batch
// again; after our COMMIT releases our locks it goes through.
bool lost_a_deadlock(std::exception_ptr const& e)
{
    try
    {
        std::rethrow_exception(e);
    }
    catch (database_error const& d)
    {
        return d.sqlstate() == "40P01" || d.sqlstate() == "40001";
    }
    catch (...)
    {
        return false;
    }
}

constexpr int max_deadlock_retries = 5;

} // namespace

writer::writer(std::string const& path, writer_options const& options)
    : options_(options), db_(path, open_mode::read_write, options.db)
{
    thread_ = std::thread([this] { run(); });
}

writer::~writer()
{
    stop();
}

void writer::submit(job j, completion done)
{
    {
        std::lock_guard lock(mutex_);
        if (!stopping_)
        {
            queue_.push_back({std::move(j), std::move(done)});
            cv_.notify_one();
            return;
        }
    }
    if (done)
        done(make_error_code(errc::internal));
}

std::future<void> writer::submit_future(job j)
{
    auto promise = std::make_shared<std::promise<void>>();
    auto future = promise->get_future();
    submit(std::move(j),
           [promise](std::error_code ec)
           {
               if (ec)
                   promise->set_exception(std::make_exception_ptr(
                       storage_error(static_cast<errc>(ec.value()), ec.message())));
               else
                   promise->set_value();
           });
    return future;
}

void writer::run_sync(job j)
{
    // Exceptions from the job are carried out as storage_error with the
    // original message, which matters for CLI diagnostics.
    auto message = std::make_shared<std::string>();
    auto wrapped = [j = std::move(j), message](database& db)
    {
        try
        {
            j(db);
        }
        catch (std::exception const& e)
        {
            *message = e.what();
            throw;
        }
    };
    auto promise = std::make_shared<std::promise<void>>();
    auto future = promise->get_future();
    submit(std::move(wrapped),
           [promise, message](std::error_code ec)
           {
               if (ec)
                   promise->set_exception(std::make_exception_ptr(storage_error(
                       static_cast<errc>(ec.value()), message->empty() ? ec.message() : *message)));
               else
                   promise->set_value();
           });
    future.get();
}

std::size_t writer::queue_depth() const
{
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void writer::stop()
{
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && !thread_.joinable())
            return;
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
        thread_.join();
}

void writer::run()
{
    std::deque<item> batch;
    for (;;)
    {
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty() && stopping_)
                return;
            // Take everything queued (up to max_batch): this is the group commit.
            auto n = std::min(queue_.size(), options_.max_batch);
            for (std::size_t i = 0; i < n; ++i)
            {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        commit_batch(batch);
        batch.clear();
    }
}

void writer::commit_batch(std::deque<item>& batch)
{
    auto const start = std::chrono::steady_clock::now();
    std::vector<std::error_code> results(batch.size());
    // A deadlock victim and every job after it leave this batch unrun and
    // go, in order, to the head of the next one: FIFO order holds.
    std::size_t ran = batch.size();
    std::error_code commit_error;
    try
    {
        transaction tx(db_, transaction::behavior::immediate);
        for (std::size_t i = 0; i < batch.size(); ++i)
        {
            try
            {
                savepoint sp(db_, "job");
                batch[i].work(db_);
                sp.release();
            }
            catch (...)
            {
                if (batch[i].attempts < max_deadlock_retries &&
                    lost_a_deadlock(std::current_exception()))
                {
                    ++batch[i].attempts;
                    ran = i;
                    break;
                }
                results[i] = code_of_current_exception();
            }
        }
        tx.commit();
    }
    catch (...)
    {
        commit_error = code_of_current_exception();
        spdlog::error("writer: group commit of {} jobs failed: {}", ran, commit_error.message());
    }
    auto const us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    stats_.last_commit_us.store(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
    stats_.total_commit_us.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
    stats_.jobs.fetch_add(ran, std::memory_order_relaxed);
    if (commit_error)
        stats_.failed_commits.fetch_add(1, std::memory_order_relaxed);
    else
        stats_.commits.fetch_add(1, std::memory_order_relaxed);

    if (ran < batch.size())
    {
        stats_.retried_jobs.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(mutex_);
        queue_.insert(queue_.begin(),
                      std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(ran)),
                      std::make_move_iterator(batch.end()));
    }
    for (std::size_t i = 0; i < ran; ++i)
    {
        // A job that failed reports its own reason even when the COMMIT
        // failed too: SQLite rolls the whole transaction back on
        // SQLITE_FULL, and the COMMIT's "no transaction is active" would
        // hide the disk-full from the job that caused it.
        auto ec = results[i] ? results[i] : commit_error;
        if (ec)
            stats_.failed_jobs.fetch_add(1, std::memory_order_relaxed);
        if (batch[i].done)
            batch[i].done(ec);
    }
}

} // namespace chatstream::storage
