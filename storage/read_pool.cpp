#include "chatstream/storage/read_pool.hpp"

#include <spdlog/spdlog.h>

namespace chatstream::storage
{

read_pool::read_pool(std::string const& path, std::size_t threads, database_options const& options)
{
    if (threads == 0)
        threads = 1;
    connections_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i)
        connections_.emplace_back(path, open_mode::read_only, options);
    for (std::size_t i = 0; i < threads; ++i)
        threads_.emplace_back([this, i] { run(i); });
}

read_pool::~read_pool()
{
    stop();
}

void read_pool::post(job j)
{
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(j));
    }
    cv_.notify_one();
}

void read_pool::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
    threads_.clear();
}

void read_pool::run(std::size_t index)
{
    auto& db = connections_[index];
    for (;;)
    {
        job j;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty())
                return; // stopping and drained
            j = std::move(queue_.front());
            queue_.pop_front();
        }
        try
        {
            j(db);
        }
        catch (std::exception const& e)
        {
            spdlog::error("read_pool: job failed: {}", e.what());
        }
    }
}

} // namespace chatstream::storage
