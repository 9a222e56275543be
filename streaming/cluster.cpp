#include "chatstream/streaming/cluster.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/listener.hpp"
#include "chatstream/storage/nodes.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace chatstream::streaming
{

namespace net = boost::asio;

namespace
{

/// A subscriber of a message that runs elsewhere, and how far it got.
struct follower
{
    std::weak_ptr<subscriber> sink;
    std::string user_id;
    request_id rid;
    std::uint64_t offset = 0;           ///< UTF-16 units already sent (or asked to skip)
    std::uint64_t reasoning_offset = 0; ///< likewise, of the reasoning
    bool started = false;               ///< `start` sent
    bool reasoning_open = false;        ///< `reasoning-start` sent, `reasoning-end` not yet
    bool finish_only = false;           ///< a canceller: hears only the end
    std::unordered_set<std::string> tools_sent;
};

/// What a refresh read of one message found.
struct snapshot
{
    std::optional<storage::message_row> row;
    stored_replay stored;
};

snapshot read_snapshot(storage::database& db, std::string const& message_id)
{
    snapshot s;
    s.row = storage::messages::get_unscoped(db, message_id);
    if (s.row)
        s.stored = read_stored_replay(db, *s.row);
    return s;
}

} // namespace

struct cluster::state : std::enable_shared_from_this<cluster::state>
{
    state(net::io_context& ioc, storage::writer& w, storage::read_pool& r, std::string uri,
          cluster_options o)
        : strand(net::make_strand(ioc)), writer(w), reads(r), db_uri(std::move(uri)),
          options(std::move(o)), heartbeat_timer(strand)
    {
    }

    net::strand<net::io_context::executor_type> strand;
    storage::writer& writer;
    storage::read_pool& reads;
    std::string db_uri;
    cluster_options options;
    net::steady_timer heartbeat_timer;
    std::unique_ptr<storage::notification_listener> listener;
    std::function<void(std::string const&)> stop_here;
    change_feed* changes = nullptr;
    bool stopped = false;

    // On `strand`:
    struct followed
    {
        std::vector<follower> followers;
        bool reading = false;
        bool dirty = false; ///< a notification arrived while reading
    };
    std::unordered_map<std::string, followed> by_message;

    std::int64_t lease_ms() const { return options.lease.count(); }

    // Listener thread. Progress and cancel payloads are message ids.
    void on_notify(std::string const& channel, std::string const& payload)
    {
        if (channel == storage::nodes::cancel_channel)
            return stop_here(payload); // a no-op unless it runs here
        if (channel == storage::nodes::changes_channel)
            return relay_in(payload);
        net::post(strand,
                  [self = shared_from_this(), message_id = payload] { self->refresh(message_id); });
    }

    void add(std::string const& message_id, follower f)
    {
        by_message[message_id].followers.push_back(std::move(f));
        refresh(message_id);
    }

    // Re-reads the message on the read pool; one read per message at a time.
    void refresh(std::string const& message_id)
    {
        auto it = by_message.find(message_id);
        if (it == by_message.end())
            return;
        if (it->second.reading)
        {
            it->second.dirty = true;
            return;
        }
        it->second.reading = true;
        reads.post(
            [self = shared_from_this(), message_id](storage::database& db)
            {
                auto snap = std::make_shared<snapshot>();
                bool failed = false;
                try
                {
                    *snap = read_snapshot(db, message_id);
                }
                catch (std::exception const& e)
                {
                    spdlog::warn("cluster: reading message {}: {}", message_id, e.what());
                    failed = true;
                }
                net::post(self->strand, [self, message_id, snap, failed]
                          { self->apply(message_id, *snap, failed); });
            });
    }

    void apply(std::string const& message_id, snapshot const& snap, bool failed)
    {
        auto it = by_message.find(message_id);
        if (it == by_message.end())
            return;
        auto& entry = it->second;
        entry.reading = false;
        if (!failed)
        {
            std::erase_if(entry.followers,
                          [&](follower& f) { return !deliver(message_id, snap, f); });
        }
        if (entry.followers.empty())
            by_message.erase(it);
        else if (entry.dirty)
        {
            entry.dirty = false;
            refresh(message_id);
        }
    }

    // Sends @p f what it misses. @return false when @p f is done.
    static bool deliver(std::string const& message_id, snapshot const& snap, follower& f)
    {
        auto sink = f.sink.lock();
        if (!sink)
            return false;
        if (!snap.row || snap.row->user_id != f.user_id)
        {
            sink->deliver(
                events::error(f.rid, message_id, wire_error::not_found, "no such message"));
            return false;
        }
        bool const terminal = snap.stored.terminal;
        if (!f.finish_only)
        {
            auto const length = core::utf16_length(snap.stored.text);
            if (!f.started)
            {
                // Past the stored end of a running generation is fine: the
                // client saw text its node had not flushed yet; it waits.
                if (f.offset > length && terminal)
                {
                    sink->deliver(events::error(f.rid, message_id, wire_error::bad_request,
                                                "fromOffset " + std::to_string(f.offset) +
                                                    " is past the end of the text"));
                    return false;
                }
                sink->deliver(events::start(message_id, snap.row->conversation_id));
                f.started = true;
            }
            if (f.offset > length && !terminal)
                return true;
            auto emit = [&](frame fr) { sink->deliver(std::move(fr)); };
            // Reasoning as it is stored: a block opens when reasoning past
            // the follower's offset appears (unless the client has part of
            // it) and closes once the answer or the end comes.
            auto const reasoning_length = core::utf16_length(snap.stored.reasoning);
            if (reasoning_length > f.reasoning_offset)
            {
                bool const open = !f.reasoning_open && f.reasoning_offset == 0;
                f.reasoning_open = f.reasoning_open || open || f.reasoning_offset > 0;
                replay_reasoning(message_id, snap.stored.reasoning, f.reasoning_offset, open, false,
                                 emit);
                f.reasoning_offset = reasoning_length;
            }
            if (f.reasoning_open && (length > 0 || terminal))
            {
                emit(events::reasoning_end(message_id));
                f.reasoning_open = false;
            }
            // Tool results committed after the text passed their position go
            // out first (with their own textPosition); the rest interleave.
            std::vector<replay_tool> late, ahead;
            for (auto const& t : snap.stored.tools)
                if (f.tools_sent.insert(t.id).second)
                    (t.text_position < f.offset ? late : ahead).push_back(t);
            if (!late.empty())
                replay_frames(message_id, {}, late, 0, emit);
            if (length > f.offset || !ahead.empty())
                replay_frames(message_id, snap.stored.text, ahead, f.offset, emit);
            f.offset = std::max(f.offset, length);
        }
        if (!terminal)
            return true;
        sink->deliver(stored_finish(*snap.row));
        return false;
    }

    // A `changed` event committed on this node, for the watchers elsewhere.
    void relay_out(std::string const& user_id, frame const& f)
    {
        std::string payload = options.node_id + '\n' + user_id + '\n' + *f.data;
        if (payload.size() > storage::nodes::max_notify_payload)
        {
            // Too big for NOTIFY (an inserted message carries its text):
            // send it without `data`; a client re-reads the row.
            boost::system::error_code ec;
            auto v = boost::json::parse(*f.data, ec);
            if (ec || !v.is_object())
                return;
            auto const& o = v.as_object();
            auto field = [&](char const* k) -> std::string_view
            {
                auto const* x = o.if_contains(k);
                return x && x->is_string() ? std::string_view(x->as_string()) : std::string_view();
            };
            auto const slim = events::changed(field("entity"), field("op"), field("id"),
                                              field("conversationId"), std::nullopt);
            payload = options.node_id + '\n' + user_id + '\n' + *slim.data;
        }
        writer.submit([payload = std::move(payload)](storage::database& db)
                      { storage::nodes::notify(db, storage::nodes::changes_channel, payload); });
    }

    // Listener thread: another node's change, for this node's watchers.
    void relay_in(std::string const& payload)
    {
        auto const a = payload.find('\n');
        auto const b = a == std::string::npos ? a : payload.find('\n', a + 1);
        if (b == std::string::npos || !changes ||
            std::string_view(payload).substr(0, a) == options.node_id)
            return; // malformed, or our own (delivered locally already)
        frame f;
        f.data = std::make_shared<std::string const>(payload.substr(b + 1));
        changes->publish_local(payload.substr(a + 1, b - a - 1), f);
    }

    void arm_heartbeat()
    {
        heartbeat_timer.expires_after(options.heartbeat);
        heartbeat_timer.async_wait(
            [self = shared_from_this()](boost::system::error_code ec)
            {
                if (ec || self->stopped)
                    return;
                self->beat();
                self->arm_heartbeat();
            });
    }

    // Renews the lease, sweeps orphans, and re-reads followed messages (a
    // safety net for a notification lost with the LISTEN connection).
    void beat()
    {
        auto const id = options.node_id;
        auto const address = options.address;
        auto const lease = lease_ms();
        writer.submit(
            [id, address, lease](storage::database& db)
            {
                auto const now = core::now_ms();
                if (!storage::nodes::heartbeat(db, id, now))
                {
                    spdlog::warn("node {}: lease row was gone; re-joining", id);
                    storage::nodes::join(db, id, address, now);
                }
                auto const orphans = storage::nodes::recover_orphans(db, now, lease);
                if (!orphans.empty())
                    spdlog::warn("node {}: interrupted {} generation(s) of a node that stopped "
                                 "renewing its lease",
                                 id, orphans.size());
            },
            [](std::error_code ec)
            {
                if (ec)
                    spdlog::warn("cluster heartbeat failed: {}", ec.message());
            });
        for (auto const& [message_id, entry] : by_message)
            refresh(message_id);
    }
};

cluster::cluster(net::io_context& ioc, storage::writer& writer, storage::read_pool& reads,
                 std::string db_uri, cluster_options options)
    : state_(std::make_shared<state>(ioc, writer, reads, std::move(db_uri), std::move(options)))
{
}

cluster::~cluster()
{
    // stop() posts and joins; a failure there must not escape a destructor.
    try
    {
        stop();
    }
    catch (std::exception const& e)
    {
        spdlog::error("cluster: stopping: {}", e.what());
    }
}

std::string const& cluster::node_id() const noexcept
{
    return state_->options.node_id;
}

std::size_t cluster::start(std::function<void(std::string const&)> stop_here, change_feed& changes)
{
    auto& st = *state_;
    st.stop_here = std::move(stop_here);
    st.changes = &changes;
    std::size_t recovered = 0;
    st.writer.run_sync(
        [&](storage::database& db)
        {
            auto const now = core::now_ms();
            // This node's previous run (same --node-id) runs nothing now,
            // whatever its lease says.
            storage::nodes::end_lease(db, st.options.node_id);
            recovered = storage::nodes::recover_orphans(db, now, st.lease_ms()).size();
            storage::nodes::join(db, st.options.node_id, st.options.address, now);
        });
    std::weak_ptr<state> weak = state_;
    st.listener = std::make_unique<storage::notification_listener>(
        st.db_uri,
        std::vector<std::string>{storage::nodes::progress_channel, storage::nodes::cancel_channel,
                                 storage::nodes::changes_channel},
        [weak](std::string const& channel, std::string const& payload)
        {
            if (auto s = weak.lock())
                s->on_notify(channel, payload);
        },
        [weak]
        {
            if (auto s = weak.lock())
                net::post(s->strand,
                          [s]
                          {
                              for (auto const& [message_id, entry] : s->by_message)
                                  s->refresh(message_id);
                          });
        });
    changes.set_relay(
        [weak](std::string const& user_id, frame const& f)
        {
            if (auto s = weak.lock())
                s->relay_out(user_id, f);
        });
    net::post(st.strand, [s = state_] { s->arm_heartbeat(); });
    return recovered;
}

void cluster::stop()
{
    auto& st = *state_;
    if (st.stopped)
        return;
    st.stopped = true;
    if (st.listener)
        st.listener->stop();
    net::post(st.strand, [s = state_] { s->heartbeat_timer.cancel(); });
    if (!st.stop_here)
        return; // never started
    try
    {
        st.writer.run_sync([id = st.options.node_id](storage::database& db)
                           { storage::nodes::leave(db, id); });
    }
    catch (std::exception const& e)
    {
        spdlog::warn("node {}: leaving: {}", st.options.node_id, e.what());
    }
}

void cluster::follow(std::string user_id, subscribe_request req, std::weak_ptr<subscriber> s)
{
    follower f{std::move(s), std::move(user_id), req.id, req.from_offset,
               req.from_reasoning_offset};
    net::post(state_->strand, [st = state_, id = req.message_id, f = std::move(f)]() mutable
              { st->add(id, std::move(f)); });
}

void cluster::cancel(std::string user_id, cancel_request req, std::weak_ptr<subscriber> s)
{
    enum class outcome
    {
        not_found,
        not_generating,
        forwarded,
        interrupted
    };
    struct result
    {
        outcome what = outcome::not_found;
        std::string status;
    };
    auto r = std::make_shared<result>();
    auto const lease = state_->lease_ms();
    state_->writer.submit(
        [r, user_id, id = req.message_id, lease](storage::database& db)
        {
            auto m = storage::messages::get(db, user_id, id);
            if (!m)
                return;
            r->status = m->status;
            if (storage::is_terminal_status(m->status))
            {
                r->what = outcome::not_generating;
                return;
            }
            auto const now = core::now_ms();
            auto owner = storage::nodes::generation_owner(db, id, now, lease);
            if (owner && owner->live)
            {
                storage::nodes::notify(db, storage::nodes::cancel_channel, id);
                r->what = outcome::forwarded;
                return;
            }
            // Nobody runs it any more: end it here rather than wait for the sweep.
            storage::messages::interrupt(db, id, now);
            storage::nodes::release(db, id);
            storage::nodes::notify(db, storage::nodes::progress_channel, id);
            r->what = outcome::interrupted;
        },
        [st = state_, r, user_id, req, s](std::error_code ec) mutable
        {
            if (ec)
                return deliver_to(s, events::error(req.id, req.message_id, wire_error::internal,
                                                   "could not cancel: " + ec.message()));
            switch (r->what)
            {
            case outcome::not_found:
                return deliver_to(s, events::error(req.id, req.message_id, wire_error::not_found,
                                                   "no such message"));
            case outcome::not_generating:
                return deliver_to(
                    s, events::error(req.id, req.message_id, wire_error::conflict,
                                     "message is not generating (status " + r->status + ")"));
            case outcome::forwarded:
            case outcome::interrupted:
                break;
            }
            follower f{std::move(s), std::move(user_id), req.id, 0};
            f.finish_only = true;
            net::post(st->strand, [st, id = req.message_id, f = std::move(f)]() mutable
                      { st->add(id, std::move(f)); });
        });
}

} // namespace chatstream::streaming
