#pragma once
/// @file change_feed.hpp
/// `watch` (docs/design.md §6): fans `changed` events out to every socket of the
/// user whose data changed. Events are published after the change commits,
/// so a client that reads in response sees it.
#include "chatstream/streaming/outbound_queue.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace chatstream::streaming
{

class subscriber;

/// Thread-safe. Watchers are held weakly: a closed socket simply drops out.
class change_feed
{
public:
    /// Adds @p s to @p user_id's watchers (idempotent).
    void watch(std::string const& user_id, std::weak_ptr<subscriber> s);

    /// Delivers @p f to every live watcher of @p user_id, in publish order
    /// per publishing thread, and hands it to the relay (other nodes).
    void publish(std::string const& user_id, frame const& f);

    /// Delivers to this node's watchers only (a change relayed from another node).
    void publish_local(std::string const& user_id, frame const& f);

    /// Other nodes' feeds (streaming/cluster.cpp). Set once, before serving.
    void set_relay(std::function<void(std::string const& user_id, frame const& f)> relay)
    {
        relay_ = std::move(relay);
    }

    /// Live watchers, for metrics and tests.
    std::size_t watchers() const;

private:
    mutable std::mutex mutex_;
    std::function<void(std::string const&, frame const&)> relay_;
    std::unordered_map<std::string, std::vector<std::weak_ptr<subscriber>>> by_user_;
};

} // namespace chatstream::streaming
