#pragma once
/// @file listener.hpp
/// PostgreSQL LISTEN on a dedicated connection and thread.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace chatstream::storage
{

/// Receives NOTIFYs of @p channels and hands each to `on_notify(channel,
/// payload)` on the listener thread (keep it short: post elsewhere).
///
/// A lost connection is re-established with backoff; notifications sent
/// meanwhile are lost, so `on_reconnect` runs after every re-LISTEN and the
/// owner re-reads whatever it follows.
class notification_listener
{
public:
    using notify_handler =
        std::function<void(std::string const& channel, std::string const& payload)>;

    /// Connects and LISTENs before returning.
    /// @throws storage::database_error when the first connection fails.
    notification_listener(std::string uri, std::vector<std::string> channels,
                          notify_handler on_notify, std::function<void()> on_reconnect = {});
    notification_listener(notification_listener const&) = delete;
    notification_listener& operator=(notification_listener const&) = delete;
    ~notification_listener();

    /// Stops the thread and closes the connection. Idempotent.
    void stop();

private:
    void run();
    bool connect();

    std::string uri_;
    std::vector<std::string> channels_;
    notify_handler on_notify_;
    std::function<void()> on_reconnect_;
    void* conn_ = nullptr; ///< PGconn*, owned by the thread once it runs
    int wake_fd_ = -1;     ///< eventfd: stop() wakes the poll
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

} // namespace chatstream::storage
