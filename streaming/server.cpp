#include "chatstream/streaming/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <spdlog/spdlog.h>

#include <memory>
#include <thread>
#include <vector>

namespace chatstream::streaming {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class http_session : public std::enable_shared_from_this<http_session>
{
public:
    explicit http_session(tcp::socket socket) : stream_(std::move(socket)) {}
    void run() { net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); }); }

private:
    void do_read()
    {
        req_ = {};
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_read(ec);
        });
    }
    void on_read(beast::error_code ec)
    {
        if (ec) return;
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(req_.version());
        res->keep_alive(req_.keep_alive());
        if (req_.target() == "/healthz")
        {
            res->result(http::status::ok);
            res->body() = "ok\n";
        }
        else
        {
            res->result(http::status::not_found);
            res->body() = "not found\n";
        }
        res->set(http::field::content_type, "text/plain");
        res->prepare_payload();
        http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
            if (!ec && res->keep_alive()) self->do_read();
        });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> req_;
};

class listener : public std::enable_shared_from_this<listener>
{
public:
    listener(net::io_context& ioc, tcp::endpoint ep) : ioc_(ioc), acceptor_(net::make_strand(ioc))
    {
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }
    void run() { do_accept(); }
    void stop() { net::post(acceptor_.get_executor(), [self = shared_from_this()] { self->acceptor_.close(); }); }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

private:
    void do_accept()
    {
        acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
            if (ec == net::error::operation_aborted) return;
            if (!ec) std::make_shared<http_session>(std::move(s))->run();
            self->do_accept();
        });
    }
    net::io_context& ioc_;
    tcp::acceptor acceptor_;
};

} // namespace

int run_server(server_options const& options)
{
    auto const threads = options.io_threads ? options.io_threads : std::max(1u, std::thread::hardware_concurrency());
    net::io_context ioc(static_cast<int>(threads));
    auto l = std::make_shared<listener>(ioc, tcp::endpoint(net::ip::make_address(options.host), options.port));
    l->run();
    spdlog::info("listening on http://{}:{}", options.host, l->port());
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    std::vector<std::thread> pool;
    for (std::size_t i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
    return 0;
}

} // namespace chatstream::streaming
