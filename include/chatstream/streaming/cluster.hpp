#pragma once
/// @file cluster.hpp
/// This node's part in a multi-node deployment on one PostgreSQL database
/// (issue 10, docs/scaling.md): the lease heartbeat, the orphan sweep, and
/// `subscribe` / `cancel` for generations that run on another node.
///
/// Cross-node streaming rides on the tables plus NOTIFY: the node running a
/// generation NOTIFYs `chatstream_progress` with the message id in the
/// transaction of every partial-text flush, tool result and terminal state;
/// a node with followers of that message re-reads the row and sends each
/// follower exactly the text past its offset, then `finish`. `cancel` on
/// any node NOTIFYs `chatstream_cancel`; the running node stops it. `watch`
/// events travel as `chatstream_changes` notifications.
#include "chatstream/streaming/change_feed.hpp"
#include "chatstream/streaming/generation.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace chatstream::storage
{
class writer;
class read_pool;
} // namespace chatstream::storage

namespace chatstream::streaming
{

struct cluster_options
{
    std::string node_id;                       ///< stable across restarts: `serve --node-id`
    std::string address;                       ///< informational (host:port)
    std::chrono::milliseconds heartbeat{2000}; ///< lease renewal and orphan sweep period
    std::chrono::milliseconds lease{10000};    ///< a node silent this long is dead
};

class cluster
{
public:
    /// @p db_uri: the PostgreSQL URI (the LISTEN connection is its own).
    cluster(boost::asio::io_context& ioc, storage::writer& writer, storage::read_pool& reads,
            std::string db_uri, cluster_options options);
    ~cluster();
    cluster(cluster const&) = delete;
    cluster& operator=(cluster const&) = delete;

    /// Joins (on the writer, synchronously), interrupts the generations of
    /// dead nodes and of this node's previous run, then starts listening and
    /// the heartbeat. @p stop_here stops a generation if it runs on this
    /// node. `changed` events of @p changes are relayed to the watchers on
    /// the other nodes, and theirs to it. @return messages interrupted.
    /// @throws on a database error (startup only).
    std::size_t start(std::function<void(std::string const& message_id)> stop_here,
                      change_feed& changes);

    /// Stops listening and the heartbeat, and leaves. Idempotent; call
    /// while the writer still runs.
    void stop();

    std::string const& node_id() const noexcept;

    /// `subscribe` to a message not running here (finished, or running on
    /// another node): replays from `from_offset`, then follows it live.
    void follow(std::string user_id, subscribe_request req, std::weak_ptr<subscriber> s);

    /// `cancel` of a message not running here: asks the node running it to
    /// stop (or interrupts it when that node is dead); @p s hears `finish`.
    void cancel(std::string user_id, cancel_request req, std::weak_ptr<subscriber> s);

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace chatstream::streaming
