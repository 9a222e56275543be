#pragma once
// Test support: a blocking Beast WebSocket/HTTP client whose reads time out.
// Apart from server_process.hpp so that tools outside Catch (bench/soak)
// can use it.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace chatstream::test
{

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;

/// A blocking WebSocket client whose reads time out (a hung server fails
/// the test instead of hanging it).
class ws_client
{
public:
    /// @param receive_buffer when non-zero, a small SO_RCVBUF makes this
    ///        client's TCP window tiny (a slow reader).
    explicit ws_client(unsigned short port, std::string const& target = "/ws?user=alice",
                       std::string const& authorization = {}, int receive_buffer = 0)
        : ws_(ioc_)
    {
        auto& sock = beast::get_lowest_layer(ws_);
        sock.open(tcp::v4());
        if (receive_buffer)
            sock.set_option(net::socket_base::receive_buffer_size(receive_buffer));
        sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        ws_.set_option(websocket::stream_base::decorator(
            [authorization](websocket::request_type& req)
            {
                if (!authorization.empty())
                    req.set(http::field::authorization, authorization);
            }));
        ws_.read_message_max(64u << 20);
        ws_.handshake("127.0.0.1", target);
    }

    void send(std::string const& text)
    {
        ws_.text(true);
        ws_.write(net::buffer(text));
    }
    void send_binary(std::string const& bytes)
    {
        ws_.binary(true);
        ws_.write(net::buffer(bytes));
    }
    void send(json::object const& o) { send(json::serialize(o)); }

    /// Reads one message, failing after 15 s: asio's blocking reads ignore
    /// SO_RCVTIMEO, so the read is async with a bounded run of the context.
    std::string read_text()
    {
        buffer_.clear();
        bool done = false;
        beast::error_code ec;
        ws_.async_read(buffer_,
                       [&](beast::error_code e, std::size_t)
                       {
                           ec = e;
                           done = true;
                       });
        ioc_.restart();
        ioc_.run_for(std::chrono::seconds(15));
        if (!done)
        {
            beast::get_lowest_layer(ws_).close(ec);
            ioc_.restart();
            ioc_.run(); // completes the aborted read
            throw std::runtime_error("timed out waiting for a server event (after " +
                                     std::to_string(received_) +
                                     " events, the last: " + last_.substr(0, 200) + ")");
        }
        if (ec)
            throw beast::system_error(ec);
        ++received_;
        last_ = beast::buffers_to_string(buffer_.data());
        return last_;
    }
    json::object read()
    {
        auto v = json::parse(read_text());
        return v.as_object();
    }
    /// Reads until an event of @p type (for @p message_id when given).
    json::object read_until(std::string const& type, std::string const& message_id = {})
    {
        for (;;)
        {
            auto e = read();
            if (e.at("type").as_string() != type)
                continue;
            if (!message_id.empty() &&
                (!e.contains("messageId") || e.at("messageId").as_string() != message_id))
                continue;
            return e;
        }
    }
    /// Every event up to and including the `finish` of @p message_id.
    std::vector<json::object> read_stream(std::string const& message_id)
    {
        std::vector<json::object> out;
        for (;;)
        {
            auto e = read();
            out.push_back(e);
            if (e.at("type").as_string() == "finish" && e.at("messageId").as_string() == message_id)
                return out;
        }
    }
    /// Sends a query and returns its `result` data (or the error event).
    json::object query(std::string const& name, json::object args, std::string const& id = "q")
    {
        send(
            json::object{{"type", "query"}, {"id", id}, {"name", name}, {"args", std::move(args)}});
        for (;;)
        {
            auto e = read();
            if (e.contains("id") && e.at("id") == json::value(id))
                return e;
        }
    }

    websocket::stream<tcp::socket>& stream() { return ws_; }

private:
    net::io_context ioc_;
    websocket::stream<tcp::socket> ws_;
    beast::flat_buffer buffer_;
    std::size_t received_ = 0;
    std::string last_;
};

struct http_reply
{
    unsigned status = 0;
    std::string body;
};

/// One HTTP/1.1 request; @p upgrade asks for a WebSocket upgrade.
inline http_reply http_get(unsigned short port, std::string const& target, bool upgrade = false,
                           std::string const& authorization = {})
{
    net::io_context ioc;
    tcp::socket sock(ioc);
    sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (upgrade)
    {
        req.set(http::field::upgrade, "websocket");
        req.set(http::field::connection, "upgrade");
        req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
        req.set(http::field::sec_websocket_version, "13");
    }
    if (!authorization.empty())
        req.set(http::field::authorization, authorization);
    http::write(sock, req);
    beast::flat_buffer b;
    http::response<http::string_body> res;
    http::read(sock, b, res);
    return {res.result_int(), res.body()};
}

} // namespace chatstream::test
