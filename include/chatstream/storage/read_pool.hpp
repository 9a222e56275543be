#pragma once
/// @file read_pool.hpp
/// A fixed set of reader threads, each owning one read-only connection.
#include "chatstream/storage/database.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace chatstream::storage
{

/// Runs read jobs off the I/O threads. One connection, one thread: a job gets
/// the connection of the thread it runs on, with that connection's statement
/// cache. `post` is thread-safe; the job itself must catch what it throws
/// (use `post_result`/`run_sync` for the common patterns).
class read_pool
{
public:
    using job = std::function<void(database&)>;

    /// @throws database_error when a connection cannot be opened.
    read_pool(std::string const& path, std::size_t threads, database_options const& options = {});
    read_pool(read_pool const&) = delete;
    read_pool& operator=(read_pool const&) = delete;
    ~read_pool();

    /// Queues @p j. Exceptions escaping @p j are logged and swallowed.
    void post(job j);

    /// Runs @p f(database&) on a pool thread and waits for its result.
    /// @throws whatever @p f throws.
    template <class F> auto run_sync(F&& f) -> std::invoke_result_t<F&, database&>
    {
        using R = std::invoke_result_t<F&, database&>;
        std::packaged_task<R(database&)> task(std::forward<F>(f));
        auto future = task.get_future();
        auto shared = std::make_shared<decltype(task)>(std::move(task));
        post([shared](database& db) { (*shared)(db); });
        return future.get();
    }

    void stop();

private:
    void run(std::size_t index);

    std::vector<database> connections_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<job> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

} // namespace chatstream::storage
