#pragma once
// Shared state of one running server, owned by the server object and held by
// sessions through a shared_ptr so it outlives every pending handler.
#include "detail/admission.hpp"
#include "detail/auth.hpp"

#include "chatstream/storage/blob_store.hpp"
#include "chatstream/streaming/change_feed.hpp"
#include "chatstream/streaming/generation.hpp"
#include "chatstream/streaming/metrics.hpp"
#include "chatstream/streaming/outbound_queue.hpp"
#include "chatstream/streaming/quota.hpp"
#include "chatstream/streaming/server.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>

namespace chatstream::storage
{
class writer;
class read_pool;
} // namespace chatstream::storage

namespace chatstream::streaming::detail
{

/// What the shutdown drain needs of a live WebSocket session.
class session_handle
{
public:
    /// Flushes what is queued, then closes with @p code. Thread-safe.
    virtual void close(boost::beast::websocket::close_code code) = 0;

protected:
    ~session_handle() = default;
};

/// Live sessions, held weakly, for the shutdown drain. Thread-safe.
class session_registry
{
public:
    void add(session_handle* s, std::weak_ptr<session_handle> w);
    void remove(session_handle* s);
    /// Asks every live session to close (each posts to its own strand).
    void close_all();

private:
    std::mutex mutex_;
    std::unordered_map<session_handle*, std::weak_ptr<session_handle>> sessions_;
};

/// external id (JWT sub / dev user) -> users.id, cached. Thread-safe.
class user_directory
{
public:
    explicit user_directory(storage::writer& w) : writer_(w) {}
    /// Calls @p done(ec, user_id) inline on a cache hit, else from the writer thread.
    void resolve(std::string const& external_id,
                 std::function<void(std::error_code, std::string)> done);

private:
    storage::writer& writer_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::string> cache_;
};

struct server_context
{
    server_context(server_options o, storage::writer& w, storage::read_pool& r, stream_hub& h,
                   change_feed& c, server_metrics& m, outbound_limits l)
        : options(std::move(o)), writer(w), reads(r), hub(h), changes(c), metrics(m), limits(l),
          users(w),
          blobs(files_directory(options)), auth{options.jwt_secret, options.jwt_allow_no_exp},
          admission(options.max_connections, options.max_connections_per_user),
          mutation_rate(options.mutation_rate_per_minute, options.mutation_burst)
    {
    }

    server_options options;
    storage::writer& writer;
    storage::read_pool& reads;
    stream_hub& hub;
    change_feed& changes;
    server_metrics& metrics;
    outbound_limits limits;
    session_registry sessions;
    user_directory users;
    storage::blob_store blobs; ///< uploads (streaming/file_upload.cpp)
    auth_policy auth;
    connection_admission admission; ///< --max-connections, --max-connections-per-user
    rate_limiter mutation_rate;     ///< --mutation-rate, per user
    /// Accepted sockets whose descriptor is at or above this are "near the
    /// open-file limit" (the kernel hands out the lowest free descriptor, so
    /// the number is a lower bound on the open count): they get a short
    /// header deadline and only /healthz and /metrics.
    int fd_pressure_threshold = 0;
    bool loopback_server = false; ///< listening on 127.0.0.0/8 or ::1 (Origin rule)

    quota_limits quota() const { return {options.daily_message_limit, options.monthly_budget_usd}; }
};

/// authenticate() under the server's policy; a refusal counts in
/// chatstream_auth_failures_total.
inline auth_result authorize(server_context& ctx, std::string_view target,
                             std::string_view authorization)
{
    auto auth = authenticate(target, authorization, ctx.auth);
    if (!auth.ok)
        ctx.metrics.auth_failures.fetch_add(1, std::memory_order_relaxed);
    return auth;
}

/// Resolves @p external_id to its users.id (a write on the writer thread
/// when not cached), then runs @p then(ec, user_id) on @p strand: the
/// session continues on its own strand, never on the writer.
template <class Strand, class Then>
void resolve_user_on(server_context& ctx, std::string const& external_id, Strand strand, Then then)
{
    ctx.users.resolve(external_id,
                      [strand, then = std::move(then)](std::error_code ec, std::string user_id)
                      {
                          boost::asio::post(strand,
                                            [then, ec, user_id = std::move(user_id)]() mutable
                                            { then(ec, std::move(user_id)); });
                      });
}

} // namespace chatstream::streaming::detail
