#pragma once
// Test support: the real chatstream binary on a free port, and a blocking
// Beast WebSocket/HTTP client to talk to it.
#include "support/temp_db.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace chatstream::test
{

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;

/// `chatstream serve` in a child process; the port is read from its log.
class server_process
{
public:
    server_process(std::string db, std::vector<std::string> extra = {},
                   std::vector<std::string> env = {})
        : db_(std::move(db)), extra_(std::move(extra)), env_(std::move(env))
    {
        start();
    }
    ~server_process()
    {
        // A test that throws (e.g. a read timed out) shows the server's side.
        if (std::uncaught_exceptions() > 0)
            std::fprintf(stderr, "---- server log ----\n%s\n", log().c_str());
        stop(SIGTERM);
    }
    server_process(server_process const&) = delete;
    server_process& operator=(server_process const&) = delete;

    unsigned short port() const { return port_; }
    pid_t pid() const { return pid_; }
    /// Resident memory of the server now (VmRSS), in KiB; 0 when not running.
    long rss_kib() const
    {
        std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("VmRSS:", 0) == 0)
                return std::stol(line.substr(6));
        return 0;
    }
    std::string log() const
    {
        std::ifstream in(log_path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    /// Sends @p sig and waits for the exit. @return the exit status (or -signal).
    int stop(int sig = SIGTERM, std::chrono::seconds wait = std::chrono::seconds(20))
    {
        if (pid_ <= 0)
            return exit_status_;
        ::kill(pid_, sig);
        auto const deadline = std::chrono::steady_clock::now() + wait;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0)
        {
            if (std::chrono::steady_clock::now() > deadline)
            {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        return exit_status_;
    }

    /// Starts again on the same database (after a stop or kill).
    void restart()
    {
        stop(SIGTERM);
        start();
    }

private:
    void start()
    {
        static int counter = 0;
        // A PostgreSQL URI is no place for a log file.
        log_path_ = (db_.starts_with("postgres") ? std::filesystem::temp_directory_path().string() +
                                                       "/chatstream-" + std::to_string(::getpid())
                                                 : db_) +
                    ".server" + std::to_string(++counter) + ".log";
        std::vector<std::string> args{CHATSTREAM_BINARY, "serve", "--db",       db_, "--port", "0",
                                      "--threads",       "2",     "--flush-ms", "20"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0)
        {
            int fd = ::open(log_path_.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            for (auto const& e : env_)
                ::putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        std::regex const listening(R"(listening on http://[^:]+:(\d+))");
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline)
        {
            std::smatch m;
            auto text = log();
            if (std::regex_search(text, m, listening))
            {
                port_ = static_cast<unsigned short>(std::stoi(m[1]));
                return;
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_)
            {
                pid_ = -1;
                throw std::runtime_error("server exited at startup:\n" + text);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("server did not start:\n" + log());
    }

    std::string db_;
    std::vector<std::string> extra_;
    std::vector<std::string> env_;
    std::string log_path_;
    pid_t pid_ = -1;
    int exit_status_ = 0;
    unsigned short port_ = 0;
};

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
