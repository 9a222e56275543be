#include "chatstream/storage/listener.hpp"

#include "chatstream/storage/database.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace chatstream::storage
{
namespace
{

PGconn* pg(void* p)
{
    return static_cast<PGconn*>(p);
}

} // namespace

notification_listener::notification_listener(std::string uri, std::vector<std::string> channels,
                                             notify_handler on_notify,
                                             std::function<void()> on_reconnect)
    : uri_(std::move(uri)), channels_(std::move(channels)), on_notify_(std::move(on_notify)),
      on_reconnect_(std::move(on_reconnect))
{
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!connect())
    {
        std::string why = conn_ ? PQerrorMessage(pg(conn_)) : "out of memory";
        if (conn_)
            PQfinish(pg(conn_));
        conn_ = nullptr;
        ::close(wake_fd_);
        throw database_error(errc::io, "LISTEN connection failed: " + why);
    }
    thread_ = std::thread([this] { run(); });
}

notification_listener::~notification_listener()
{
    stop();
}

void notification_listener::stop()
{
    if (stopping_.exchange(true))
        return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    if (thread_.joinable())
        thread_.join();
    if (conn_)
        PQfinish(pg(conn_));
    conn_ = nullptr;
    ::close(wake_fd_);
}

bool notification_listener::connect()
{
    if (conn_)
        PQfinish(pg(conn_));
    conn_ = PQconnectdb(uri_.c_str());
    if (!conn_ || PQstatus(pg(conn_)) != CONNECTION_OK)
        return false;
    std::string sql;
    for (auto const& c : channels_)
    {
        char* quoted = PQescapeIdentifier(pg(conn_), c.c_str(), c.size());
        sql += "LISTEN " + std::string(quoted) + ";";
        PQfreemem(quoted);
    }
    PGresult* r = PQexec(pg(conn_), sql.c_str());
    bool const ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok && PQsetnonblocking(pg(conn_), 1) == 0;
}

void notification_listener::run()
{
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping_)
    {
        if (!conn_ || PQstatus(pg(conn_)) != CONNECTION_OK)
        {
            // Sleep on the eventfd so stop() still interrupts the backoff.
            pollfd w{wake_fd_, POLLIN, 0};
            ::poll(&w, 1, static_cast<int>(backoff.count()));
            if (stopping_)
                break;
            if (!connect())
            {
                spdlog::warn("LISTEN connection: {}", conn_ ? PQerrorMessage(pg(conn_)) : "failed");
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
                continue;
            }
            spdlog::info("LISTEN connection re-established");
            backoff = std::chrono::milliseconds(100);
            if (on_reconnect_)
                on_reconnect_();
        }
        pollfd fds[2] = {{PQsocket(pg(conn_)), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0)
            continue;
        if (stopping_)
            break;
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP))
        {
            if (!PQconsumeInput(pg(conn_)))
            {
                spdlog::warn("LISTEN connection lost: {}", PQerrorMessage(pg(conn_)));
                PQfinish(pg(conn_));
                conn_ = nullptr;
                continue;
            }
            while (PGnotify* n = PQnotifies(pg(conn_)))
            {
                on_notify_(n->relname, n->extra);
                PQfreemem(n);
            }
        }
    }
}

} // namespace chatstream::storage
