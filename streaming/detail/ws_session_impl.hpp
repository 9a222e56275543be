#pragma once
// The member functions of basic_ws_session (ws_session.hpp). Included by
// ws_session.cpp, which compiles the server's session, and by tests that
// run a session over beast::test::stream.
#include "detail/http_util.hpp"
#include "detail/mutations.hpp"
#include "detail/queries.hpp"
#include "detail/ws_session.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace chatstream::streaming::detail
{
namespace ws_session_detail
{

namespace beast = boost::beast;

inline constexpr std::size_t max_frame_bytes = 64 * 1024;
// The read buffer keeps up to this much capacity between frames (Beast
// grows it in steps; ordinary chat frames stay well below).
inline constexpr std::size_t kept_read_buffer_bytes = 16 * 1024;
// Per-connection bound on queries running on the read pool; reading pauses
// while it is reached (server-flex `queue_limit`).
inline constexpr int max_queries_in_flight = 16;

template <class Stream> void disable_timeout(Stream& s)
{
    if constexpr (requires { s.expires_never(); })
        s.expires_never();
}

// Ends the connection without a close handshake.
inline void cut(beast::tcp_stream& s)
{
    beast::error_code ignored;
    s.socket().close(ignored);
}

template <class Stream> void cut(Stream& s)
{
    s.close();
}

} // namespace ws_session_detail

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using ws_session_detail::kept_read_buffer_bytes;
using ws_session_detail::max_frame_bytes;
using ws_session_detail::max_queries_in_flight;

template <class NextLayer>
basic_ws_session<NextLayer>::basic_ws_session(NextLayer&& next_layer,
                                              std::shared_ptr<server_context> ctx,
                                              std::string user_id,
                                              std::optional<std::int64_t> expires_at_s,
                                              admission_ticket ticket)
    : ws_(std::move(next_layer)), ctx_(std::move(ctx)), user_id_(std::move(user_id)),
      queue_(ctx_->limits), close_timer_(ws_.get_executor()), expiry_timer_(ws_.get_executor()),
      expires_at_s_(expires_at_s), ticket_(std::move(ticket))
{
    auto const ex = ws_.get_executor();
    if (auto const* s = ex.template target<session_strand>())
        strand_ = *s;
}

template <class NextLayer> basic_ws_session<NextLayer>::~basic_ws_session()
{
    if (accepted_)
    {
        ctx_->sessions.remove(this);
        ctx_->metrics.connections.fetch_sub(1, std::memory_order_relaxed);
    }
}

template <class NextLayer>
void basic_ws_session<NextLayer>::run(http::request<http::string_body> req)
{
    // The websocket stream has its own timeouts; the tcp_stream's must be off.
    ws_session_detail::disable_timeout(beast::get_lowest_layer(ws_));
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "chatstream"); }));
    websocket::permessage_deflate pmd;
    pmd.server_enable = false; // CPU per frame matters more than bytes on chat deltas
    ws_.set_option(pmd);
    ws_.auto_fragment(false); // one event, one frame
    ws_.read_message_max(max_frame_bytes);
    ws_.async_accept(
        req, beast::bind_front_handler(&basic_ws_session::on_accept, this->shared_from_this()));
}

template <class NextLayer> void basic_ws_session<NextLayer>::on_accept(beast::error_code ec)
{
    if (ec)
        return fail(ec, "accept");
    accepted_ = true;
    ctx_->sessions.add(this, this->weak_from_this());
    ctx_->metrics.connections.fetch_add(1, std::memory_order_relaxed);
    ctx_->metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
    if (expires_at_s_)
        close_at_expiry();
    do_read();
}

template <class NextLayer> void basic_ws_session<NextLayer>::close_at_expiry()
{
    // The token was checked once, at the upgrade; the session must not
    // outlive it. Wall clock, like `exp`. The handler holds a weak pointer:
    // a pending expiry must not keep a closed session alive.
    auto const left_ms = *expires_at_s_ * 1000 - core::now_ms();
    expiry_timer_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(left_ms, 0)));
    expiry_timer_.async_wait(
        [weak = this->weak_from_this()](beast::error_code ec)
        {
            auto self = weak.lock();
            if (ec || !self || self->closing_)
                return;
            self->ctx_->metrics.tokens_expired.fetch_add(1, std::memory_order_relaxed);
            // What is queued is flushed first, so the client knows its offsets.
            self->close_after_flush_ = true;
            self->close_code_ = token_expired_close_code;
            self->close_text_ = "token expired";
            self->do_write();
        });
}

template <class NextLayer> void basic_ws_session<NextLayer>::do_read()
{
    if (closing_)
        return;
    if (queries_in_flight_ >= max_queries_in_flight)
    {
        read_paused_ = true;
        return;
    }
    ws_.async_read(buffer_,
                   beast::bind_front_handler(&basic_ws_session::on_read, this->shared_from_this()));
}

template <class NextLayer>
void basic_ws_session<NextLayer>::on_read(beast::error_code ec, std::size_t)
{
    if (ec)
    {
        // An oversized frame has already been answered by Beast with close
        // code 1009 (too big); log it for operators.
        if (ec == websocket::error::message_too_big)
            spdlog::info("session {}: frame larger than {} bytes, closed with 1009", user_id_,
                         max_frame_bytes);
        return fail(ec, "read");
    }
    if (!ws_.got_text())
    {
        ctx_->metrics.bad_requests.fetch_add(1, std::memory_order_relaxed);
        enqueue(events::error({}, std::nullopt, wire_error::bad_request,
                              "binary frames are not supported; send JSON text frames"));
    }
    else
    {
        auto const data = buffer_.cdata();
        handle(std::string_view(static_cast<char const*>(data.data()), data.size()));
    }
    buffer_.consume(buffer_.size());
    // Like the parser's: a large frame's buffer is not kept per connection.
    if (buffer_.capacity() > kept_read_buffer_bytes)
        buffer_.shrink_to_fit();
    do_read();
}

template <class NextLayer> void basic_ws_session<NextLayer>::handle(std::string_view text)
{
    auto parsed = parser_.parse(text);
    if (auto* err = std::get_if<protocol_error>(&parsed))
    {
        ctx_->metrics.bad_requests.fetch_add(1, std::memory_order_relaxed);
        return enqueue(events::error(err->id, std::nullopt, err->code, err->message));
    }
    auto& request = std::get<client_request>(parsed);
    std::visit(
        [this](auto& r)
        {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, ping_request>)
                enqueue(events::pong(r.id));
            else if constexpr (std::is_same_v<T, generate_request>)
                ctx_->hub.generate(user_id_, std::move(r), this->weak_from_this());
            else if constexpr (std::is_same_v<T, subscribe_request>)
                ctx_->hub.subscribe(user_id_, std::move(r), this->weak_from_this());
            else if constexpr (std::is_same_v<T, cancel_request>)
                ctx_->hub.cancel(user_id_, std::move(r), this->weak_from_this());
            else if constexpr (std::is_same_v<T, mutate_request>)
            {
                // Per-user bucket (--mutation-rate/--mutation-burst): one
                // client created 12,000 conversations in 2.3 s without it.
                if (auto wait = ctx_->mutation_rate.acquire(user_id_))
                {
                    ctx_->metrics.mutations_limited.fetch_add(1, std::memory_order_relaxed);
                    return enqueue(events::error(r.id, std::nullopt, wire_error::rate_limited,
                                                 "too many mutations: at most " +
                                                     std::to_string(static_cast<long long>(
                                                         ctx_->options.mutation_rate_per_minute)) +
                                                     " per minute; retry in " +
                                                     std::to_string(wait->count()) + " ms"));
                }
                run_mutation({ctx_->writer, ctx_->hub, ctx_->changes}, user_id_, std::move(r),
                             this->weak_from_this());
            }
            else if constexpr (std::is_same_v<T, watch_request>)
            {
                ctx_->changes.watch(user_id_, this->weak_from_this());
                enqueue(events::result(r.id, R"({"watching":true})"));
            }
            else if constexpr (std::is_same_v<T, query_request>)
            {
                ++queries_in_flight_;
                run_query(ctx_->reads, user_id_, std::move(r), ctx_->quota(),
                          [self = this->shared_from_this()](frame f)
                          {
                              net::post(self->ws_.get_executor(),
                                        [self, f = std::move(f)]() mutable
                                        {
                                            --self->queries_in_flight_;
                                            self->enqueue(std::move(f));
                                            if (self->read_paused_)
                                            {
                                                self->read_paused_ = false;
                                                self->do_read();
                                            }
                                        });
                          });
            }
        },
        request);
}

template <class NextLayer> void basic_ws_session<NextLayer>::deliver(frame f)
{
    net::post(ws_.get_executor(), [self = this->shared_from_this(), f = std::move(f)]() mutable
              { self->enqueue(std::move(f)); });
}

template <class NextLayer>
std::shared_ptr<void> basic_ws_session<NextLayer>::follow(std::shared_ptr<stream_log> log,
                                                          stream_log::cursor from,
                                                          std::weak_ptr<subscriber>)
{
    // Posted, not dispatched: a reply delivered just before (the `ack` of the
    // generate that started this stream) is posted too, and must go first.
    net::post(ws_.get_executor(),
              [self = this->shared_from_this(), log = std::move(log), from]() mutable
              {
                  if (self->closing_)
                      return;
                  // One cursor per message and socket: a second subscribe
                  // to a message this socket follows moves its cursor (the
                  // client asked for the text from there), rather than
                  // sending the same events twice under one messageId.
                  auto same = std::find_if(self->subscriptions_.begin(), self->subscriptions_.end(),
                                           [&](subscription const& s) { return s.log == log; });
                  if (same != self->subscriptions_.end())
                      same->cursor = from;
                  else
                      self->subscriptions_.push_back({std::move(log), from});
                  self->do_write();
              });
    return nullptr; // the session pulls; nothing to keep alive on its behalf
}

template <class NextLayer>
std::optional<session_strand> basic_ws_session<NextLayer>::home_strand() const
{
    return strand_;
}

template <class NextLayer> void basic_ws_session<NextLayer>::on_log_ready()
{
    net::dispatch(ws_.get_executor(), [self = this->shared_from_this()] { self->do_write(); });
}

template <class NextLayer> void basic_ws_session<NextLayer>::enqueue(frame f)
{
    if (closing_)
        return;
    if (!queue_.push(std::move(f)))
    {
        // Replies and `changed` events that pile up mean a client that does
        // not read: it is dropped, never waited for (docs/design.md §6).
        // Generation events never come through here (they are pulled by
        // cursor), so this bound only holds what this socket asked for.
        ctx_->metrics.queue_drops.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("session {}: outbound queue full ({} frames, {} bytes), closing", user_id_,
                     queue_.size(), queue_.bytes());
        queue_.clear();
        return do_close({websocket::close_code::policy_error, "outbound queue overflow"});
    }
    do_write();
}

template <class NextLayer> void basic_ws_session<NextLayer>::do_write()
{
    if (write_in_flight_ || closing_ || !accepted_)
        return;
    // Replies first (an `ack` precedes the stream it acknowledges), then the
    // followed generations in turn.
    if (!queue_.empty())
    {
        auto const before = queue_.merged();
        writing_ = queue_.pop();
        if (auto const merged = queue_.merged() - before)
            ctx_->metrics.events_merged.fetch_add(merged, std::memory_order_relaxed);
        write_in_flight_ = true;
        ws_.text(true);
        return ws_.async_write(
            net::buffer(*writing_.data),
            beast::bind_front_handler(&basic_ws_session::on_write, this->shared_from_this()));
    }
    if (write_from_logs())
        return;
    if (close_after_flush_)
        do_close({close_code_, close_text_});
}

// Writes the next item of one followed log, in round robin. A reader that
// fell behind gets the text since its cursor as one delta (bounded), so it
// catches up in few frames; when every log is drained, each one will wake
// this session as it grows. @return true when a write was started.
template <class NextLayer> bool basic_ws_session<NextLayer>::write_from_logs()
{
    constexpr std::size_t max_delta_bytes = 16 * 1024;
    // A reader behind a finished answer reads the rest from the row in
    // pieces of this size: bounded memory per socket, few round trips.
    constexpr std::size_t stored_piece_bytes = 64 * 1024;
    std::weak_ptr<log_listener> const me = this->weak_from_this();
    for (std::size_t tried = 0; tried < subscriptions_.size(); ++tried)
    {
        auto const i = next_subscription_++ % subscriptions_.size();
        auto& sub = subscriptions_[i];
        std::uint64_t offset = 0;
        auto const got =
            sub.log->next(sub.cursor, delta_text_, offset, writing_, max_delta_bytes, me);
        if (got == stream_log::item::none)
            continue;
        if (got == stream_log::item::stored)
        {
            fetch_stored(sub, stored_piece_bytes);
            return true;
        }
        if (got == stream_log::item::text || got == stream_log::item::reasoning)
        {
            if (got == stream_log::item::text)
                events::write_text_delta(delta_frame_, sub.log->message_id(), offset, delta_text_);
            else
                events::write_reasoning_delta(delta_frame_, sub.log->message_id(), offset,
                                              delta_text_);
            write_in_flight_ = true;
            ws_.text(true);
            ws_.async_write(
                net::buffer(delta_frame_),
                beast::bind_front_handler(&basic_ws_session::on_write, this->shared_from_this()));
            return true;
        }
        if (sub.cursor.done)
            subscriptions_.erase(subscriptions_.begin() + static_cast<std::ptrdiff_t>(i));
        write_in_flight_ = true;
        ws_.text(true);
        ws_.async_write(
            net::buffer(*writing_.data),
            beast::bind_front_handler(&basic_ws_session::on_write, this->shared_from_this()));
        return true;
    }
    return false;
}

// The log let go of its text once the message was committed (issue 19):
// read the next piece of it from the row on the read pool, then write it as
// the delta the log would have handed out. write_in_flight_ holds the writes
// back meanwhile; a subscribe that moved the cursor in between wins.
template <class NextLayer>
void basic_ws_session<NextLayer>::fetch_stored(subscription const& sub, std::size_t max_bytes)
{
    write_in_flight_ = true;
    auto const range = sub.cursor.stored;
    auto const length = std::min(range.end - range.byte, max_bytes);
    ctx_->reads.post(
        [self = this->shared_from_this(), log = sub.log, range, length](storage::database& db)
        {
            std::string bytes;
            bool ok = true;
            try
            {
                bytes = storage::messages::read_bytes(db, log->message_id(), range.reasoning,
                                                      static_cast<std::int64_t>(range.byte),
                                                      static_cast<std::int64_t>(length));
            }
            catch (std::exception const& e)
            {
                spdlog::warn("session: reading {} for a late reader: {}", log->message_id(),
                             e.what());
                ok = false;
            }
            net::post(self->ws_.get_executor(),
                      [self, log, range, bytes = std::move(bytes), ok]() mutable
                      { self->on_stored(log, range, std::move(bytes), ok); });
        });
}

template <class NextLayer>
void basic_ws_session<NextLayer>::on_stored(std::shared_ptr<stream_log> const& log,
                                            stream_log::cursor::stored_range range,
                                            std::string bytes, bool ok)
{
    write_in_flight_ = false;
    if (closing_)
        return;
    auto sub = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                            [&](subscription const& s) { return s.log == log; });
    if (sub == subscriptions_.end() || sub->cursor.stored.byte != range.byte ||
        sub->cursor.stored.reasoning != range.reasoning ||
        (range.reasoning ? sub->cursor.reasoning_byte : sub->cursor.byte) != range.byte)
        return do_write(); // unsubscribed or moved meanwhile
    // Whole code points only; the row holds exactly the log's text, so a
    // piece shorter than asked for means the row is not what it should be.
    auto const whole = core::complete_utf8_prefix(bytes);
    if (!ok || whole == 0)
    {
        subscriptions_.erase(sub);
        enqueue(events::error({}, log->message_id(), wire_error::internal,
                              "could not read the rest of the message; subscribe again"));
        return;
    }
    bytes.resize(whole);
    ctx_->metrics.stored_reads.fetch_add(1, std::memory_order_relaxed);
    stream_log::advance_stored(sub->cursor, bytes);
    if (range.reasoning)
        events::write_reasoning_delta(delta_frame_, log->message_id(), range.u16, bytes);
    else
        events::write_text_delta(delta_frame_, log->message_id(), range.u16, bytes);
    write_in_flight_ = true;
    ws_.text(true);
    ws_.async_write(
        net::buffer(delta_frame_),
        beast::bind_front_handler(&basic_ws_session::on_write, this->shared_from_this()));
}

template <class NextLayer>
void basic_ws_session<NextLayer>::on_write(beast::error_code ec, std::size_t)
{
    write_in_flight_ = false;
    writing_ = {};
    // A large catch-up delta is not worth keeping capacity for.
    if (delta_frame_.capacity() > 32 * 1024)
    {
        std::string().swap(delta_frame_);
        std::string().swap(delta_text_);
    }
    if (ec)
    {
        // A failed write leaves a partial frame behind: the connection is
        // unusable. Cut it, so the pending read ends and the session (its
        // descriptor, buffers and admission) goes now, not at the idle
        // timeout. Found by tests/streaming/ws_session_test.cpp.
        closing_ = true;
        ws_session_detail::cut(beast::get_lowest_layer(ws_));
        return fail(ec, "write");
    }
    ctx_->metrics.events_sent.fetch_add(1, std::memory_order_relaxed);
    do_write();
}

template <class NextLayer> void basic_ws_session<NextLayer>::close(websocket::close_code code)
{
    net::post(ws_.get_executor(),
              [self = this->shared_from_this(), code]
              {
                  if (self->closing_ || !self->accepted_)
                      return;
                  // Flush what is queued and what the followed logs hold, then close.
                  self->close_after_flush_ = true;
                  self->close_code_ = code;
                  self->do_write();
              });
}

template <class NextLayer>
void basic_ws_session<NextLayer>::do_close(websocket::close_reason reason)
{
    if (closing_)
        return;
    closing_ = true;
    expiry_timer_.cancel();
    ws_.async_close(reason,
                    [self = this->shared_from_this()](beast::error_code ec)
                    {
                        self->close_timer_.cancel();
                        if (ec)
                            self->fail(ec, "close");
                    });
    // A peer that reads nothing never completes the close handshake (and the
    // close waits behind a stuck write): cut the socket after a grace period.
    close_timer_.expires_after(std::chrono::seconds(2));
    close_timer_.async_wait(
        [self = this->shared_from_this()](beast::error_code ec)
        {
            if (!ec)
                ws_session_detail::cut(beast::get_lowest_layer(self->ws_));
        });
}

template <class NextLayer>
void basic_ws_session<NextLayer>::fail(beast::error_code ec, char const* what)
{
    // Normal ends of a connection are not worth more than a trace line.
    if (is_expected_disconnect(ec))
        return spdlog::trace("session {}: {}: {}", user_id_, what, ec.message());
    spdlog::debug("session {}: {}: {}", user_id_, what, ec.message());
}

} // namespace chatstream::streaming::detail
