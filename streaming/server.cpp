// The listener, plain-HTTP sessions (healthz, metrics, upgrade), and the
// server object: startup and the drain. Threads and signals are the
// caller's (src/serve_command.cpp).
#include "chatstream/streaming/server.hpp"

#include "chatstream/core/json.hpp"
#include "detail/auth.hpp"
#include "detail/file_routes.hpp"
#include "detail/http_guard.hpp"
#include "detail/http_routes.hpp"
#include "detail/http_util.hpp"
#include "detail/server_context.hpp"
#include "detail/source_enricher.hpp"
#include "detail/web_assets.hpp"
#include "detail/ws_session.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/cluster.hpp"
#include "chatstream/streaming/generation.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

namespace chatstream::streaming
{

std::vector<std::string> server_options::default_upload_mime_allow()
{
    return {"image/png",  "image/jpeg",    "image/gif", "image/webp",       "application/pdf",
            "text/plain", "text/markdown", "text/csv",  "application/json", "audio/mpeg",
            "audio/wav",  "audio/x-wav",   "audio/ogg", "audio/webm",       "audio/mp4"};
}

std::string files_directory(server_options const& o)
{
    if (!o.files_dir.empty())
        return o.files_dir;
    auto const where = storage::parse_location(o.db_path);
    // Several nodes must share one --files-dir; alone, ./data/files.
    if (storage::serves_several_nodes(where.dialect))
        return "data/files";
    auto const parent = std::filesystem::path(where.target).parent_path();
    return (parent.empty() ? std::filesystem::path("files") : parent / "files").string();
}

namespace detail
{
namespace
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

} // namespace

void user_directory::resolve(std::string const& external_id,
                             std::function<void(std::error_code, std::string)> done)
{
    {
        std::lock_guard lock(mutex_);
        if (auto it = cache_.find(external_id); it != cache_.end())
            return done({}, it->second);
    }
    auto id = std::make_shared<std::string>();
    writer_.submit([external_id, id](storage::database& db)
                   { *id = storage::users::ensure(db, external_id); },
                   [this, external_id, id, done = std::move(done)](std::error_code ec)
                   {
                       if (!ec)
                       {
                           std::lock_guard lock(mutex_);
                           cache_.emplace(external_id, *id);
                       }
                       done(ec, *id);
                   });
}

namespace
{

//------------------------------------------------------------------------------

/// Reads one HTTP request at a time; hands WebSocket upgrades to ws_session.
class http_session : public std::enable_shared_from_this<http_session>
{
public:
    http_session(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                 std::shared_ptr<server_context> ctx)
        : stream_(std::move(stream)), buffer_(std::move(buffer)), ctx_(std::move(ctx)),
          fd_pressure_(ctx_->fd_pressure_threshold > 0 &&
                       stream_.socket().native_handle() >= ctx_->fd_pressure_threshold)
    {
    }

    void run()
    {
        net::dispatch(stream_.get_executor(),
                      beast::bind_front_handler(&http_session::do_read, shared_from_this()));
    }

private:
    // The header first: routes that stream their body (uploads) or their
    // response (SSE) take the connection over before any body is read.
    void do_read()
    {
        header_parser_.emplace();
        header_parser_->header_limit(8 * 1024);
        // No body limit yet: Beast checks Content-Length against it while
        // reading the header, and uploads set their own (on_header below).
        header_parser_->body_limit(boost::none);
        // Near the open-file limit a connection gets one second for its
        // header: idle sockets there would keep /healthz out.
        stream_.expires_after(std::chrono::seconds(fd_pressure_ ? 1 : 30));
        http::async_read_header(
            stream_, buffer_, *header_parser_,
            beast::bind_front_handler(&http_session::on_header, shared_from_this()));
    }

    void on_header(beast::error_code ec, std::size_t)
    {
        if (ec == http::error::end_of_stream)
            return do_shutdown();
        if (ec)
        {
            // RFC 9112: malformed framing gets a status, then the connection
            // closes (what follows cannot be delimited).
            if (auto r = header_error_refusal(ec))
            {
                ctx_->metrics.framing_refused.fetch_add(1, std::memory_order_relaxed);
                return refuse(11, *r);
            }
            return fail(ec, "read header");
        }
        auto const& req = header_parser_->get();
        if (auto r = check_framing(req))
        {
            ctx_->metrics.framing_refused.fetch_add(1, std::memory_order_relaxed);
            return refuse(req.version(), *r);
        }
        auto const url = boost::urls::parse_origin_form(req.target());
        std::string const path = url ? std::string(url->path()) : std::string();
        bool const operator_endpoint = path == "/healthz" || path == "/metrics";
        if (fd_pressure_ && !operator_endpoint)
        {
            ctx_->metrics.refused_fd_pressure.fetch_add(1, std::memory_order_relaxed);
            return refuse(req.version(), {http::status::service_unavailable, "overloaded",
                                          "the server is at its open-file limit; retry later"});
        }
        if ((path == "/ws" || path.starts_with("/api/")) &&
            !origin_allowed(req[http::field::origin], req[http::field::host],
                            ctx_->options.allowed_origins, ctx_->loopback_server))
        {
            ctx_->metrics.origins_refused.fetch_add(1, std::memory_order_relaxed);
            return refuse(req.version(),
                          {http::status::forbidden, "forbidden",
                           "origin " + std::string(req[http::field::origin]).substr(0, 256) +
                               " may not use this server (serve --allowed-origins)"});
        }
        if (auto route = find_connection_route(path))
            return route(std::move(stream_), std::move(buffer_), std::move(*header_parser_), ctx_);
        body_parser_.emplace(std::move(*header_parser_));
        // Beast compares a Content-Length with body_limit only while parsing
        // the header, which is done: check it here (413, then close, since
        // the body is not read); body_limit still bounds chunked bodies.
        constexpr std::uint64_t max_body = 16 * 1024;
        if (auto const n = body_parser_->content_length(); n && *n > max_body)
            return send(std::make_shared<string_response>(make_json_error(
                body_parser_->get().version(), false, http::status::payload_too_large,
                "bad_request", "request body is larger than 16384 bytes")));
        body_parser_->body_limit(max_body);
        http::async_read(stream_, buffer_, *body_parser_,
                         [self = shared_from_this(), path](beast::error_code ec, std::size_t)
                         { self->on_read(ec, path); });
    }

    void on_read(beast::error_code ec, std::string const& path)
    {
        if (ec)
            return fail(ec, "read");
        auto req = body_parser_->release();

        if (path == "/ws")
        {
            if (!websocket::is_upgrade(req))
                return respond(req, http::status::upgrade_required, "text/plain",
                               "WebSocket upgrade required\n");
            auto auth = authorize(*ctx_, req.target(), req[http::field::authorization]);
            if (!auth.ok)
            {
                return send(std::make_shared<string_response>(
                    make_json_error(req.version(), req.keep_alive(), http::status::unauthorized,
                                    "unauthorized", auth.error)));
            }
            auto admitted = admit(ctx_->admission, ctx_->metrics, auth.external_id);
            if (auto const* no = std::get_if<admission_refusal>(&admitted))
                return refuse(req.version(),
                              {http::status::service_unavailable, "overloaded", no->message});
            // users::ensure is a write: it runs on the writer thread, and the
            // upgrade continues on this strand when it is durable.
            auto shared_req = std::make_shared<http::request<http::string_body>>(std::move(req));
            auto ticket =
                std::make_shared<admission_ticket>(std::move(std::get<admission_ticket>(admitted)));
            return resolve_user_on(
                *ctx_, auth.external_id, stream_.get_executor(),
                [self = shared_from_this(), shared_req, ticket,
                 expires = auth.expires_at_s](std::error_code ec, std::string user_id)
                {
                    if (ec)
                        return self->respond(*shared_req, http::status::internal_server_error,
                                             "text/plain", "could not resolve user\n");
                    std::make_shared<ws_session>(beast::tcp_stream(self->stream_.release_socket()),
                                                 self->ctx_, user_id, expires, std::move(*ticket))
                        ->run(std::move(*shared_req));
                });
        }
        if (path == "/healthz")
            return respond(req, http::status::ok, "text/plain", "ok\n");
        if (path == "/metrics")
        {
            if (ctx_->options.metrics_token &&
                !bearer_matches(req[http::field::authorization], *ctx_->options.metrics_token))
                return send(std::make_shared<string_response>(
                    make_json_error(req.version(), req.keep_alive(), http::status::unauthorized,
                                    "unauthorized", "/metrics needs its bearer token")));
            return respond(req, http::status::ok, "text/plain; version=0.0.4",
                           ctx_->metrics.render(ctx_->writer.stats(), ctx_->writer.queue_depth()));
        }
        if (req.method() == http::verb::get || req.method() == http::verb::head)
            if (auto const* asset = find_web_asset(path))
                return respond_asset(req, *asset);
        respond(req, http::status::not_found, "text/plain", "not found\n");
    }

    // The embedded chat page: revalidated on every load (no-cache + ETag),
    // so a new binary's page is picked up without a stale module graph.
    void respond_asset(http::request<http::string_body> const& req, web_asset const& asset)
    {
        auto const etag = "\"" + std::to_string(std::hash<std::string_view>{}(asset.body)) + "\"";
        auto res =
            std::make_shared<http::response<http::string_body>>(http::status::ok, req.version());
        res->set(http::field::server, "chatstream");
        res->set(http::field::content_type, asset.mime);
        res->set(http::field::cache_control, "no-cache");
        res->set(http::field::etag, etag);
        res->set("X-Content-Type-Options", "nosniff");
        res->keep_alive(req.keep_alive());
        if (req[http::field::if_none_match] == etag)
            res->result(http::status::not_modified);
        else if (req.method() != http::verb::head)
            res->body() = std::string(asset.body);
        res->prepare_payload();
        if (req.method() == http::verb::head)
            res->content_length(asset.body.size());
        send(std::move(res));
    }

    void respond(http::request<http::string_body> const& req, http::status status,
                 std::string_view type, std::string body)
    {
        send(std::make_shared<string_response>(
            make_response(req.version(), req.keep_alive(), status, type, std::move(body))));
    }

    void send(std::shared_ptr<http::response<http::string_body>> res)
    {
        http::async_write(stream_, *res,
                          [self = shared_from_this(), res](beast::error_code ec, std::size_t)
                          {
                              if (ec)
                                  return self->fail(ec, "write");
                              if (!res->keep_alive())
                                  return self->do_shutdown();
                              self->do_read();
                          });
    }

    /// Answers @p r and closes: nothing after this request can be trusted
    /// to be where its framing says (or the server will not read it).
    void refuse(unsigned version, http_refusal const& r)
    {
        auto res = std::make_shared<string_response>(
            make_json_error(version, false, r.status, r.code, r.message));
        if (r.status == http::status::service_unavailable)
            res->set(http::field::retry_after, "1");
        send(std::move(res));
    }

    void do_shutdown()
    {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (fd_pressure_ || ec)
            return;
        // Drain what the client still sends for a moment: closing with
        // unread bytes resets the connection, and the answer could be lost.
        stream_.expires_after(std::chrono::seconds(2));
        discard_until_closed(shared_from_this(), stream_, net::buffer(discard_));
    }

    void fail(beast::error_code ec, char const* what)
    {
        if (is_expected_disconnect(ec))
            return spdlog::trace("http: {}: {}", what, ec.message());
        spdlog::debug("http: {}: {}", what, ec.message());
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<header_parser> header_parser_;
    std::optional<http::request_parser<http::string_body>> body_parser_;
    std::shared_ptr<server_context> ctx_;
    bool const fd_pressure_; ///< accepted near the open-file limit
    std::array<char, 512> discard_;
};

//------------------------------------------------------------------------------

class listener : public std::enable_shared_from_this<listener>
{
public:
    listener(net::io_context& ioc, tcp::endpoint ep, std::shared_ptr<server_context> ctx)
        : ioc_(ioc), acceptor_(net::make_strand(ioc)), ctx_(std::move(ctx))
    {
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }

    void run() { do_accept(); }

    /// Stops accepting. Thread-safe.
    void stop()
    {
        net::post(acceptor_.get_executor(),
                  [self = shared_from_this()]
                  {
                      beast::error_code ec;
                      self->acceptor_.close(ec);
                      self->retry_timer_.cancel();
                  });
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

private:
    void do_accept()
    {
        // Each connection gets its own strand: every handler of a session
        // runs there, so the session needs no mutex.
        acceptor_.async_accept(net::make_strand(ioc_),
                               beast::bind_front_handler(&listener::on_accept, shared_from_this()));
    }

    void on_accept(beast::error_code ec, tcp::socket socket)
    {
        if (ec == net::error::operation_aborted || !acceptor_.is_open())
            return;
        if (ec)
            return back_off(ec);
        backoff_ = std::chrono::milliseconds(0);
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<http_session>(beast::tcp_stream(std::move(socket)), beast::flat_buffer(),
                                       ctx_)
            ->run();
        do_accept();
    }

    // EMFILE/ENFILE/ENOBUFS leave the connection in the backlog, so an
    // immediate retry fails again at once: that loop spun at 100-130 % CPU.
    // Triage the backlog with the spare descriptor, then wait 10 ms,
    // doubling to 100 ms, until a descriptor is free.
    void back_off(beast::error_code ec)
    {
        ctx_->metrics.accept_errors.fetch_add(1, std::memory_order_relaxed);
        if (backoff_.count() == 0)
            spdlog::warn("accept: {}; backing off until a descriptor is free", ec.message());
        if (ec == net::error::no_descriptors || ec.value() == ENFILE)
            triage_backlog();
        backoff_ =
            std::clamp(backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(100));
        retry_timer_.expires_after(backoff_);
        retry_timer_.async_wait(
            [self = shared_from_this()](beast::error_code ec)
            {
                if (!ec && self->acceptor_.is_open())
                {
                    self->reserve_spare();
                    self->do_accept();
                }
            });
    }

    // A FIFO backlog behind connections that never send a byte would keep
    // /healthz waiting as long as they idle. With the spare descriptor
    // released, drain the backlog: a connection whose request bytes have
    // already arrived is served (it takes the spare's place), one that has
    // sent nothing yet is closed at once. The idea is libev's spare-fd trick;
    // closing only the silent ones keeps real requests answered at the limit.
    void triage_backlog()
    {
        if (spare_fd_ < 0)
            return;
        ::close(spare_fd_);
        spare_fd_ = -1;
        for (int i = 0; i < 4096; ++i)
        {
            int const fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                return; // EAGAIN: drained; EMFILE: the slot went elsewhere
            char byte;
            if (::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
            {
                ctx_->metrics.refused_fd_pressure.fetch_add(1, std::memory_order_relaxed);
                ::close(fd);
                continue;
            }
            beast::error_code ec;
            tcp::socket socket(net::make_strand(ioc_));
            socket.assign(acceptor_.local_endpoint(ec).protocol(), fd, ec);
            if (ec)
            {
                ::close(fd);
                return;
            }
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<http_session>(beast::tcp_stream(std::move(socket)),
                                           beast::flat_buffer(), ctx_)
                ->run();
            return; // the spare's slot is in use until the next retry
        }
    }

    void reserve_spare()
    {
        if (spare_fd_ < 0)
            spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    net::steady_timer retry_timer_{acceptor_.get_executor()};
    std::chrono::milliseconds backoff_{0};
    std::shared_ptr<server_context> ctx_;
    int spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC); ///< released at EMFILE
};

} // namespace

void resume_http(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                 std::shared_ptr<server_context> ctx)
{
    std::make_shared<http_session>(std::move(stream), std::move(buffer), std::move(ctx))->run();
}

} // namespace detail

//------------------------------------------------------------------------------

namespace
{

class http_server final : public server
{
public:
    http_server(boost::asio::io_context& ioc, server_options const& options,
                server_services const& services)
        : ioc_(ioc), options_(options), services_(services),
          rate_(options.rate_limit_per_minute, options.rate_limit_burst),
          hub_ctx_{ioc,
                   services.writer,
                   services.reads,
                   services.model,
                   services.tools,
                   metrics_,
                   std::chrono::milliseconds(options.flush_ms)},
          enricher_(options.enrich ? std::make_shared<detail::source_enricher>(
                                         ioc, enrich_options(options), services.writer, &changes_)
                                   : nullptr),
          hub_(configured(hub_ctx_, options, services, changes_, rate_, enricher_.get()))
    {
        auto const fds = detail::descriptor_budget(options.max_connections);
        auto effective = options;
        effective.max_connections = fds.max_connections;
        ctx_ =
            std::make_shared<detail::server_context>(effective, services.writer, services.reads,
                                                     hub_, changes_, metrics_, outbound_limits{});
        ctx_->fd_pressure_threshold = fds.pressure_threshold;
        ctx_->loopback_server = boost::asio::ip::make_address(options.host).is_loopback();
        spdlog::info("admission: {} connections, {} per user (open-file limit {})",
                     fds.max_connections, options.max_connections_per_user, fds.open_file_limit);
    }

    void start() override
    {
        namespace net = boost::asio;
        using tcp = net::ip::tcp;
        if (services_.cluster)
        {
            auto const recovered = services_.cluster->start(
                [this](std::string const& message_id) { hub_.stop_here(message_id); }, changes_);
            spdlog::info("node {} joined; interrupted {} generation(s) of stopped nodes",
                         services_.cluster->node_id(), recovered);
        }
        listener_ = std::make_shared<detail::listener>(
            ioc_, tcp::endpoint(net::ip::make_address(options_.host), options_.port), ctx_);
        listener_->run();
        detail::start_file_sweeper(ioc_, ctx_);
    }

    std::uint16_t port() const override { return listener_ ? listener_->port() : 0; }

    std::size_t active_generations() const override { return hub_.active(); }

    void shutdown(std::function<void()> done) override
    {
        done_ = std::move(done);
        drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        if (listener_)
            listener_->stop();
        if (enricher_)
            enricher_->shutdown();
        hub_.shutdown(
            [this]
            {
                boost::asio::post(ioc_,
                                  [this]
                                  {
                                      ctx_->sessions.close_all();
                                      wait_for_sessions();
                                  });
            });
    }

private:
    static fetch_options enrich_options(server_options const& options)
    {
        fetch_options o;
        o.allow_private = options.enrich_allow_private;
        return o;
    }

    /// hub_context's optional parts, filled before the hub copies it.
    static hub_context const& configured(hub_context& hub_ctx, server_options const& options,
                                         server_services const& services, change_feed& changes,
                                         rate_limiter& rate, source_enrichment* enrichment)
    {
        hub_ctx.enrichment = enrichment;
        if (!options.model.empty())
            hub_ctx.default_model = options.model;
        hub_ctx.changes = &changes;
        hub_ctx.quota = {options.daily_message_limit, options.monthly_budget_usd};
        hub_ctx.rate = &rate;
        hub_ctx.auto_title = options.auto_title;
        hub_ctx.cluster = services.cluster;
        return hub_ctx;
    }

    void wait_for_sessions()
    {
        if (metrics_.connections.load() == 0 || std::chrono::steady_clock::now() > drain_deadline_)
            return done_();
        drain_timer_.expires_after(std::chrono::milliseconds(20));
        drain_timer_.async_wait([this](boost::system::error_code) { wait_for_sessions(); });
    }

    boost::asio::io_context& ioc_;
    server_options const options_;
    server_services const services_;
    server_metrics metrics_;
    change_feed changes_;
    rate_limiter rate_;
    hub_context hub_ctx_;
    std::shared_ptr<detail::source_enricher> enricher_;
    stream_hub hub_;
    std::shared_ptr<detail::server_context> ctx_;
    std::shared_ptr<detail::listener> listener_;
    boost::asio::steady_timer drain_timer_{ioc_};
    std::chrono::steady_clock::time_point drain_deadline_;
    std::function<void()> done_;
};

} // namespace

std::unique_ptr<server> make_server(boost::asio::io_context& ioc, server_options const& options,
                                    server_services const& services)
{
    return std::make_unique<http_server>(ioc, options, services);
}

} // namespace chatstream::streaming
