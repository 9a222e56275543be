// frame-ceiling-server: the stack's ceiling for docs/design.md §8 comparisons.
//
// A minimal Beast WebSocket server that speaks just enough of the chatstream
// protocol for chatstream-load (`generate` -> ack, start, N text-delta
// frames of the same shape as the real server, finish) with no database, no
// generation engine and no fan-out. Whatever the real server loses against
// this in the same run is the cost of chatstream itself.
//
// `/delay MS` in the prompt paces the tokens like the scripted provider does
// (one timer wait of MS between tokens), so the paced ceiling is measured at
// the same pacing as the real server.
//
//   frame-ceiling-server --port 9090 [--threads N]
#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>

#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;

namespace
{

// Same token mix as the scripted provider: ASCII, accents, CJK, emoji.
char const* const tokens[] = {"Hello", " wörld", " 漢字", " 😀", " café", " 🚀", " ok", " 中文"};

class session : public std::enable_shared_from_this<session>
{
public:
    explicit session(tcp::socket s) : ws_(std::move(s)), signal_(ws_.get_executor()) {}

    net::any_io_executor executor() { return ws_.get_executor(); }

    awaitable<void> run()
    {
        auto self = shared_from_this();
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        co_await ws_.async_accept(use_awaitable);
        signal_.expires_at(std::chrono::steady_clock::time_point::max());
        net::co_spawn(ws_.get_executor(), writer(), net::detached);
        beast::flat_buffer buffer;
        long seq = 0;
        for (;;)
        {
            beast::error_code ec;
            co_await ws_.async_read(buffer, net::redirect_error(use_awaitable, ec));
            if (ec)
                break;
            auto v = json::parse(
                std::string_view(static_cast<char const*>(buffer.data().data()), buffer.size()),
                ec);
            buffer.consume(buffer.size());
            if (ec || !v.is_object())
                continue;
            auto const& o = v.as_object();
            if (!o.contains("content"))
                continue;
            auto content = json::value_to<std::string>(o.at("content"));
            long n = 100;
            if (auto p = content.find("/tokens "); p != std::string::npos)
                n = std::stol(content.substr(p + 8));
            long delay_ms = 0;
            if (auto p = content.find("/delay "); p != std::string::npos)
                delay_ms = std::stol(content.substr(p + 7));
            auto id = "m" + std::to_string(seq++);
            std::string rid = o.contains("id") ? json::value_to<std::string>(o.at("id")) : "";
            net::co_spawn(ws_.get_executor(), generate(id, rid, n, delay_ms), net::detached);
        }
        closed_ = true;
        signal_.cancel();
    }

private:
    void push(std::string frame)
    {
        queue_.push_back(std::move(frame));
        signal_.cancel_one();
    }

    awaitable<void> generate(std::string id, std::string rid, long n, long delay_ms)
    {
        auto self = shared_from_this();
        net::steady_timer pace(ws_.get_executor());
        push("{\"type\":\"ack\",\"id\":" + chatstream::core::json_string(rid) +
             ",\"conversationId\":\"c\",\"userMessageId\":\"u\",\"messageId\":\"" + id + "\"}");
        push("{\"type\":\"start\",\"messageId\":\"" + id + "\",\"conversationId\":\"c\"}");
        std::size_t offset = 0;
        for (long i = 0; i < n && !closed_; ++i)
        {
            std::string const tok = tokens[i % std::size(tokens)];
            std::string f = "{\"type\":\"text-delta\",\"messageId\":\"" + id +
                            "\",\"offset\":" + std::to_string(offset) + ",\"delta\":";
            chatstream::core::append_json_string(f, tok);
            f += "}";
            offset += chatstream::core::utf16_length(tok);
            push(std::move(f));
            if (delay_ms > 0)
            {
                pace.expires_after(std::chrono::milliseconds(delay_ms));
                beast::error_code ec;
                co_await pace.async_wait(net::redirect_error(use_awaitable, ec));
            }
            // Yield so other generations on this thread get turns.
            else if (i % 64 == 63)
                co_await net::post(ws_.get_executor(), use_awaitable);
        }
        push("{\"type\":\"finish\",\"messageId\":\"" + id +
             "\",\"status\":\"complete\",\"finishReason\":\"stop\",\"usage\":{\"inputTokens\":1,"
             "\"outputTokens\":" +
             std::to_string(n) + "}}");
    }

    // Exactly one write in flight: one async_write per frame.
    awaitable<void> writer()
    {
        auto self = shared_from_this();
        while (!closed_)
        {
            if (queue_.empty())
            {
                beast::error_code ec;
                co_await signal_.async_wait(net::redirect_error(use_awaitable, ec));
                continue;
            }
            auto frame = std::move(queue_.front());
            queue_.pop_front();
            beast::error_code ec;
            co_await ws_.async_write(net::buffer(frame), net::redirect_error(use_awaitable, ec));
            if (ec)
                break;
        }
    }

    websocket::stream<beast::tcp_stream> ws_;
    net::steady_timer signal_;
    std::deque<std::string> queue_;
    bool closed_ = false;
};

awaitable<void> accept_loop(tcp::acceptor& acceptor, net::io_context& ioc)
{
    for (;;)
    {
        auto socket = co_await acceptor.async_accept(net::make_strand(ioc), use_awaitable);
        socket.set_option(tcp::no_delay(true));
        auto s = std::make_shared<session>(std::move(socket));
        // Every coroutine of a session runs on the socket's strand.
        net::co_spawn(s->executor(), s->run(), net::detached);
    }
}

} // namespace

int main(int argc, char** argv)
{
    std::string host = "127.0.0.1";
    unsigned short port = 9090;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    CLI::App app{"frame-ceiling-server: minimal Beast server writing chatstream-shaped frames"};
    app.add_option("--host", host)->capture_default_str();
    app.add_option("--port", port)->capture_default_str();
    app.add_option("--threads", threads)->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    net::io_context ioc(threads);
    tcp::acceptor acceptor(ioc, {net::ip::make_address(host), port});
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;
    net::co_spawn(ioc, accept_loop(acceptor, ioc), net::detached);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i)
        pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool)
        t.join();
}
