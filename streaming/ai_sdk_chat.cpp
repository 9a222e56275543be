// The AI SDK chat transport over the generation engine: `POST /api/chat`
// streams one generation as a UI message stream (SSE), `GET
// /api/chat/{id}/stream` resumes it, `POST /api/chat/{id}/stop` cancels it.
// See docs/ai-sdk.md for the decisions.
#include "detail/ai_sdk_chat.hpp"

#include "detail/auth.hpp"
#include "detail/http_util.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/generation.hpp"
#include "chatstream/streaming/ui_message_stream.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <optional>
#include <string>

namespace chatstream::streaming::detail
{
namespace
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

// useChat sends the whole history in every request; only the last message is
// used, but the body must fit. Beyond it: 413.
constexpr std::size_t max_chat_body = 1u << 20;
constexpr std::size_t max_small_body = 16 * 1024;
// Bound of the SSE bytes waiting behind the write in flight; a client that
// reads slower than this is dropped (the generation goes on, docs/design.md §6).
constexpr std::size_t max_pending_bytes = 8u << 20;
constexpr auto keep_alive_interval = std::chrono::seconds(15);
constexpr auto write_timeout = std::chrono::seconds(60);

http::status status_for(std::string_view code)
{
    if (code == "bad_request")
        return http::status::bad_request;
    if (code == "not_found")
        return http::status::not_found;
    if (code == "conflict")
        return http::status::conflict;
    if (code == "rate_limited" || code == "quota_exceeded")
        return http::status::too_many_requests;
    if (code == "unauthorized")
        return http::status::unauthorized;
    return http::status::internal_server_error;
}

std::string_view str(boost::json::object const& o, std::string_view key)
{
    if (auto const* v = o.if_contains(key); v && v->is_string())
        return v->get_string();
    return {};
}

enum class route
{
    chat,   ///< POST /api/chat
    resume, ///< GET /api/chat/{id}/stream
    stop    ///< POST /api/chat/{id}/stop
};

//------------------------------------------------------------------------------

/// One request to the AI SDK endpoints, from its header to the end of its
/// response; then the connection goes back to the keep-alive loop.
///
/// Lives on the connection's strand. The hub holds it weakly as a
/// subscriber; it owns itself through its pending I/O and its keep-alive
/// timer, so it goes away when the client does, and the generation goes on.
class chat_connection : public subscriber, public std::enable_shared_from_this<chat_connection>
{
public:
    chat_connection(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                    std::shared_ptr<server_context> ctx, route r, std::string chat_id)
        : stream_(std::move(stream)), buffer_(std::move(buffer)), ctx_(std::move(ctx)), route_(r),
          chat_id_(std::move(chat_id)), strand_(stream_.get_executor()), keep_alive_timer_(strand_)
    {
        ctx_->metrics.connections.fetch_add(1, std::memory_order_relaxed);
    }

    ~chat_connection() override
    {
        ctx_->metrics.connections.fetch_sub(1, std::memory_order_relaxed);
    }

    /// Takes over after the header was read. Runs on the strand.
    void run(header_parser&& header)
    {
        auto const& req = header.get();
        version_ = req.version();
        keep_alive_ = req.keep_alive();
        // Only an origin the guard let through (detail/http_guard.hpp) gets
        // here: echo it, never `*`.
        cors_origin_ = std::string(req[http::field::origin]);
        auto const method = req.method();
        // An answer before the body is read leaves it on the wire: the
        // connection ends with that answer.
        bool const body_pending = !header.is_done();
        auto const early = [&] { keep_alive_ = keep_alive_ && !body_pending; };

        if (method == http::verb::options)
            return early(),
                   preflight(std::string(req[http::field::access_control_request_headers]));
        auto const expected = route_ == route::resume ? http::verb::get : http::verb::post;
        if (method != expected)
        {
            early();
            auto res = make_json_error(
                version_, keep_alive_, http::status::method_not_allowed, "bad_request",
                std::string("use ") + std::string(http::to_string(expected)));
            res.set(http::field::allow, std::string(http::to_string(expected)) + ", OPTIONS");
            return respond(std::move(res));
        }

        auto auth = authorize(*ctx_, req.target(), req[http::field::authorization]);
        if (!auth.ok)
        {
            early();
            return respond(make_json_error(version_, keep_alive_, http::status::unauthorized,
                                           "unauthorized", auth.error));
        }
        external_id_ = std::move(auth.external_id);
        // A stream is a long-lived connection like a WebSocket: the same
        // admission limits (stop is a short request).
        if (route_ != route::stop)
        {
            auto admitted = admit(ctx_->admission, ctx_->metrics, external_id_);
            if (auto const* no = std::get_if<admission_refusal>(&admitted))
            {
                keep_alive_ = false;
                auto res = make_json_error(version_, false, http::status::service_unavailable,
                                           "overloaded", no->message);
                res.set(http::field::retry_after, "1");
                return respond(std::move(res));
            }
            ticket_ = std::move(std::get<admission_ticket>(admitted));
        }

        // The body (empty for GET) is read whole, with a bound. Beast checks
        // a Content-Length against body_limit only while parsing the header
        // (done already), so it is checked here; body_limit bounds chunked bodies.
        auto const limit = route_ == route::chat ? max_chat_body : max_small_body;
        if (auto const n = header.content_length(); n && *n > limit)
            return early(), too_large();
        body_.emplace(std::move(header));
        body_->body_limit(limit);
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, *body_,
                         beast::bind_front_handler(&chat_connection::on_body, shared_from_this()));
    }

    /// Thread-safe: posts to the strand.
    void deliver(frame f) override
    {
        // strand_, not stream_'s executor: the stream may have gone back to
        // the keep-alive loop already (moved from).
        net::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable
                  { self->on_frame(std::move(f)); });
    }

private:
    enum class phase
    {
        request,   ///< reading, authenticating, starting
        waiting,   ///< asked the hub; the first event decides the status line
        streaming, ///< 200 sent, SSE chunks flowing
        done       ///< response complete (or connection dropped)
    };

    void on_body(beast::error_code ec, std::size_t)
    {
        if (ec == http::error::body_limit)
            return too_large();
        if (ec)
            return fail(ec, "read body");
        stream_.expires_never();
        arm_keep_alive();
        resolve_user_on(*ctx_, external_id_, strand_,
                        [self = shared_from_this()](std::error_code ec, std::string user_id)
                        { self->on_user(ec, std::move(user_id)); });
    }

    void on_user(std::error_code ec, std::string user_id)
    {
        if (ec)
            return respond_error(http::status::internal_server_error, "internal",
                                 "could not resolve user");
        user_id_ = std::move(user_id);
        switch (route_)
        {
        case route::chat:
            return start_chat();
        case route::resume:
        case route::stop:
        {
            auto const message_id = ctx_->hub.running_message(user_id_, chat_id_);
            // Nothing running here, or someone else's chat: the same answer,
            // so a stranger learns nothing. 204 is what DefaultChatTransport
            // reads as "no active stream".
            if (!message_id)
                return respond(make_response(version_, keep_alive_, http::status::no_content,
                                             "application/json", {}));
            phase_ = phase::waiting;
            if (route_ == route::resume)
                // The AI SDK's resume replays the whole message: from offset 0.
                ctx_->hub.subscribe(user_id_, {{}, *message_id, 0}, weak_from_this());
            else
                ctx_->hub.cancel(user_id_, {{}, *message_id}, weak_from_this());
            return;
        }
        }
    }

    void start_chat()
    {
        auto parsed = ai_sdk::parse_chat_request(body_->get().body());
        if (auto* err = std::get_if<std::string>(&parsed))
        {
            ctx_->metrics.bad_requests.fetch_add(1, std::memory_order_relaxed);
            return respond_error(http::status::bad_request, "bad_request", *err);
        }
        auto chat = std::make_shared<ai_sdk::chat_request>(std::get<ai_sdk::chat_request>(parsed));
        chat_id_ = chat->chat_id;

        // useChat names its chats itself: create the conversation under that
        // id on first use. An id taken by another user fails the insert
        // (primary key) and answers 404, like any other user's id.
        ctx_->writer.submit(
            [user_id = user_id_, chat](storage::database& db)
            {
                if (storage::conversations::get(db, user_id, chat->chat_id))
                    return;
                storage::conversation_row c;
                c.id = chat->chat_id;
                c.user_id = user_id;
                c.model = chat->model;
                c.created_at = c.updated_at = core::now_ms();
                storage::conversations::insert(db, c);
            },
            [self = shared_from_this(), chat](std::error_code ec)
            { net::post(self->strand_, [self, chat, ec] { self->on_conversation(ec, *chat); }); });
    }

    void on_conversation(std::error_code ec, ai_sdk::chat_request const& chat)
    {
        if (ec == storage::errc::constraint || ec == storage::errc::not_found)
            return respond_error(http::status::not_found, "not_found",
                                 "no such conversation: " + chat.chat_id);
        if (ec)
            return respond_error(http::status::internal_server_error, "internal",
                                 "could not store the conversation: " + ec.message());
        phase_ = phase::waiting;
        if (chat.regenerate_message_id)
        {
            // useChat's regenerate(): the same engine path as `mutate
            // regenerate` (ownership, conflict, the later messages dropped).
            mutate_request m;
            m.name = mutation_name::regenerate;
            m.message_id = *chat.regenerate_message_id;
            return ctx_->hub.regenerate(user_id_, std::move(m), weak_from_this());
        }
        generate_request req;
        req.conversation_id = chat.chat_id;
        req.content = chat.content;
        req.model = chat.model;
        ctx_->hub.generate(user_id_, std::move(req), weak_from_this());
    }

    void on_frame(frame f)
    {
        if (phase_ == phase::done || phase_ == phase::request || !f.data)
            return;
        if (phase_ == phase::waiting)
        {
            boost::system::error_code ec;
            auto v = boost::json::parse(*f.data, ec);
            if (ec || !v.is_object())
                return;
            auto const& e = v.get_object();
            auto const type = str(e, "type");
            if (route_ == route::stop)
                return on_stop_frame(type, e);
            if (type == "error")
            {
                auto const code = str(e, "code");
                // The message ended between the lookup and the subscribe and
                // is not ours to see any more: nothing to resume.
                if (route_ == route::resume && code == "not_found")
                    return respond(make_response(version_, keep_alive_, http::status::no_content,
                                                 "application/json", {}));
                return respond_error(status_for(code), code, str(e, "message"));
            }
            start_stream();
        }
        if (encoder_.encode(*f.data, pending_))
            ended_ = true;
        if (pending_.size() > max_pending_bytes)
        {
            ctx_->metrics.queue_drops.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("ai-sdk stream {}: client too slow ({} bytes queued), closing", chat_id_,
                         pending_.size());
            return drop();
        }
        if (!write_in_flight_)
            do_write();
    }

    // `POST /api/chat/{id}/stop` answers once the stop is committed.
    void on_stop_frame(std::string_view type, boost::json::object const& e)
    {
        if (type == "finish")
            return respond(
                make_response(version_, keep_alive_, http::status::ok, "application/json",
                              R"({"messageId":)" + core::json_string(str(e, "messageId")) +
                                  R"(,"status":)" + core::json_string(str(e, "status")) + "}"));
        if (type == "error")
        {
            auto const code = str(e, "code");
            // Finished meanwhile: nothing left to stop.
            if (code == "conflict" || code == "not_found")
                return respond(make_response(version_, keep_alive_, http::status::no_content,
                                             "application/json", {}));
            return respond_error(status_for(code), code, str(e, "message"));
        }
    }

    // The status line and headers go out with the first chunk. Chunked
    // encoding rather than a close-delimited body: the client can tell a
    // complete stream (last chunk) from a cut one, and the connection is
    // reused afterwards. HTTP/1.0 clients get a close-delimited body.
    void start_stream()
    {
        phase_ = phase::streaming;
        chunked_ = version_ >= 11;
        if (!chunked_)
            keep_alive_ = false;
        head_ = "HTTP/1.1 200 OK\r\n"
                "Server: chatstream\r\n"
                "Content-Type: text/event-stream\r\n"
                "Cache-Control: no-cache\r\n"
                "x-vercel-ai-ui-message-stream: v1\r\n"
                "X-Accel-Buffering: no\r\n";
        if (!cors_origin_.empty())
            head_ += "Access-Control-Allow-Origin: " + cors_origin_ + "\r\nVary: Origin\r\n";
        head_ += chunked_ ? "Transfer-Encoding: chunked\r\n" : "";
        head_ += keep_alive_ ? (version_ >= 11 ? "" : "Connection: keep-alive\r\n")
                             : "Connection: close\r\n";
        head_ += "\r\n";
    }

    void do_write()
    {
        if (pending_.empty() && !(ended_ && !last_chunk_sent_) && head_.empty())
            return;
        // Everything queued goes out in one write (one chunk): fewer
        // syscalls when the client is behind, never a merged event.
        writing_ = std::move(head_);
        head_.clear();
        if (!pending_.empty())
        {
            if (chunked_)
            {
                char size[20];
                auto const n = std::snprintf(size, sizeof size, "%zx\r\n", pending_.size());
                writing_.append(size, static_cast<std::size_t>(n));
            }
            writing_ += pending_;
            if (chunked_)
                writing_ += "\r\n";
            pending_.clear();
        }
        if (ended_ && !last_chunk_sent_)
        {
            if (chunked_)
                writing_ += "0\r\n\r\n";
            last_chunk_sent_ = true;
        }
        write_in_flight_ = true;
        stream_.expires_after(write_timeout);
        net::async_write(stream_, net::buffer(writing_),
                         beast::bind_front_handler(&chat_connection::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t)
    {
        write_in_flight_ = false;
        writing_.clear();
        if (ec)
        {
            fail(ec, "write");
            return drop();
        }
        stream_.expires_never();
        if (!pending_.empty() || (ended_ && !last_chunk_sent_))
            return do_write();
        if (last_chunk_sent_)
            finish_connection();
    }

    // SSE comments while idle: proxies keep the stream, and a vanished
    // client shows up as a failed write instead of lingering.
    void arm_keep_alive()
    {
        keep_alive_timer_.expires_after(keep_alive_interval);
        keep_alive_timer_.async_wait(
            [self = shared_from_this()](beast::error_code ec)
            {
                if (ec || self->phase_ == phase::done)
                    return;
                if (self->phase_ == phase::streaming && !self->ended_ && !self->write_in_flight_ &&
                    self->pending_.empty())
                {
                    self->pending_ = ai_sdk::keep_alive_comment;
                    self->do_write();
                }
                self->arm_keep_alive();
            });
    }

    void too_large()
    {
        keep_alive_ = false; // the rest of the body is still on the wire
        respond_error(http::status::payload_too_large, "bad_request",
                      "request body is larger than " +
                          std::to_string(route_ == route::chat ? max_chat_body : max_small_body) +
                          " bytes");
    }

    void respond_error(http::status status, std::string_view code, std::string_view message)
    {
        respond(make_json_error(version_, keep_alive_, status, code, message));
    }

    void respond(string_response res)
    {
        phase_ = phase::done;
        keep_alive_timer_.cancel();
        if (!cors_origin_.empty())
        {
            res.set(http::field::access_control_allow_origin, cors_origin_);
            res.set(http::field::vary, "Origin");
        }
        res.keep_alive(keep_alive_);
        auto sp = std::make_shared<string_response>(std::move(res));
        http::async_write(stream_, *sp,
                          [self = shared_from_this(), sp](beast::error_code ec, std::size_t)
                          {
                              if (ec)
                                  return self->fail(ec, "write");
                              self->finish_connection();
                          });
    }

    // CORS: a useChat app on another origin sends JSON (and maybe a bearer
    // token), which needs a preflight. Only origins --allowed-origins lists
    // get this far (a same-origin page needs no CORS at all).
    void preflight(std::string requested_headers)
    {
        auto res = make_response(version_, keep_alive_, http::status::no_content, "text/plain", {});
        res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
        res.set(http::field::access_control_allow_headers,
                requested_headers.empty() ? "Content-Type, Authorization" : requested_headers);
        res.set(http::field::access_control_max_age, "600");
        respond(std::move(res));
    }

    // Back to the keep-alive loop, or close.
    void finish_connection()
    {
        phase_ = phase::done;
        keep_alive_timer_.cancel();
        if (keep_alive_)
            return resume_http(std::move(stream_), std::move(buffer_), ctx_);
        beast::error_code ec;
        stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
        // Read (and drop) what the client still sends, e.g. the rest of a
        // refused body, for a while: closing with unread bytes would reset
        // the connection, and the client could lose the answer.
        stream_.expires_after(std::chrono::seconds(5));
        discard_until_closed(shared_from_this(), stream_, net::buffer(discard_));
    }

    void drop()
    {
        phase_ = phase::done;
        keep_alive_timer_.cancel();
        beast::error_code ec;
        stream_.socket().close(ec);
    }

    void fail(beast::error_code ec, char const* what)
    {
        if (is_expected_disconnect(ec))
            return spdlog::trace("ai-sdk {}: {}: {}", chat_id_, what, ec.message());
        spdlog::debug("ai-sdk {}: {}: {}", chat_id_, what, ec.message());
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    route route_;
    std::string chat_id_;
    net::any_io_executor strand_; ///< the connection's strand
    net::steady_timer keep_alive_timer_;
    std::optional<http::request_parser<http::string_body>> body_;
    unsigned version_ = 11;
    bool keep_alive_ = true;
    std::array<char, 4096> discard_{};
    std::string external_id_;
    std::string cors_origin_; ///< the request's Origin, already allowed by the guard
    admission_ticket ticket_; ///< a stream's place under --max-connections
    std::string user_id_;
    phase phase_ = phase::request;
    ai_sdk::ui_message_encoder encoder_;
    std::string head_;
    std::string pending_;
    std::string writing_;
    bool chunked_ = true;
    bool write_in_flight_ = false;
    bool ended_ = false;
    bool last_chunk_sent_ = false;
};

void not_found(beast::tcp_stream&& stream, beast::flat_buffer&& buffer, header_parser const& header,
               std::shared_ptr<server_context> const& ctx)
{
    auto res = std::make_shared<string_response>(make_json_error(
        header.get().version(), false, http::status::not_found, "not_found", "no such endpoint"));
    auto s = std::make_shared<beast::tcp_stream>(std::move(stream));
    (void)buffer;
    (void)ctx;
    http::async_write(*s, *res,
                      [s, res](beast::error_code, std::size_t)
                      {
                          beast::error_code ec;
                          s->socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
                      });
}

} // namespace

void serve_ai_sdk_chat(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                       header_parser&& parser, std::shared_ptr<server_context> const& ctx)
{
    std::make_shared<chat_connection>(std::move(stream), std::move(buffer), ctx, route::chat,
                                      std::string())
        ->run(std::move(parser));
}

void serve_ai_sdk_chat_item(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                            header_parser&& parser, std::shared_ptr<server_context> const& ctx)
{
    // /api/chat/{id}/stream | /api/chat/{id}/stop
    auto const url = boost::urls::parse_origin_form(parser.get().target());
    std::string_view path = url ? std::string_view(url->encoded_path()) : std::string_view();
    constexpr std::string_view prefix = "/api/chat/";
    std::string_view rest = path.substr(std::min(path.size(), prefix.size()));
    auto const slash = rest.find('/');
    std::string_view const id = rest.substr(0, slash);
    std::string_view const action =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (!ai_sdk::valid_chat_id(id) || (action != "stream" && action != "stop"))
        return not_found(std::move(stream), std::move(buffer), parser, ctx);
    std::make_shared<chat_connection>(std::move(stream), std::move(buffer), ctx,
                                      action == "stream" ? route::resume : route::stop,
                                      std::string(id))
        ->run(std::move(parser));
}

} // namespace chatstream::streaming::detail
