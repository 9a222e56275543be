// chatstream-load: load-test harness for a running chatstream server.
//
// Opens N WebSocket connections (ramped), runs K concurrent generations per
// connection until --duration seconds or --requests generations, validates
// every stream (offsets contiguous, deltas == content length, finish received,
// no error) and prints one JSON line with throughput and latency percentiles.
// --resume-at F disconnects each stream after fraction F of its expected
// events and resumes it with `subscribe` + fromOffset on a new connection,
// counting gaps and overlaps (both must be 0).
//
//   chatstream-load --url ws://127.0.0.1:8080/ws --connections 100 --streams-per-conn 1
//                   --prompt '/tokens 2000' --requests 100   (one command line)
#include "chatstream/core/utf16.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <jwt.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using net::awaitable;
using net::use_awaitable;

namespace
{

struct options
{
    std::string url = "ws://127.0.0.1:8080/ws";
    int connections = 1;
    int streams_per_conn = 1;
    std::string prompt = "/tokens 2000";
    double duration = 0;  // seconds; 0 = use --requests
    long requests = 0;    // total generations; 0 = use --duration
    double ramp = 1.0;    // seconds to open all connections
    double resume_at = 0; // 0 = no resume test; else fraction of expected events
    long expected_tokens = 0;
    std::string token;
    std::string jwt_secret;
    int threads = 1;
    int server_pid = 0;
    std::string label;
    std::string user_prefix = "load-user-";
    double idle_seconds = 0;    // > 0: open connections, hold them idle, measure RSS
    bool idle_generate = false; // idle mode: send one `generate` per connection, then never read
};

// Latency samples in microseconds; percentiles computed once at the end.
struct samples
{
    std::mutex mutex;
    std::vector<std::uint32_t> values;
    void add(std::vector<std::uint32_t> const& more)
    {
        std::lock_guard lock(mutex);
        values.insert(values.end(), more.begin(), more.end());
    }
    json::object summary()
    {
        std::lock_guard lock(mutex);
        json::object o;
        if (values.empty())
            return o;
        std::sort(values.begin(), values.end());
        auto pct = [&](double p)
        { return values[std::min(values.size() - 1, std::size_t(p * values.size()))] / 1000.0; };
        o["p50_ms"] = pct(0.50);
        o["p90_ms"] = pct(0.90);
        o["p99_ms"] = pct(0.99);
        o["max_ms"] = values.back() / 1000.0;
        o["count"] = values.size();
        return o;
    }
};

struct totals
{
    std::atomic<long> started{0}, completed{0}, failed{0}, events{0}, bytes{0}, connect_failures{0};
    std::atomic<long> gaps{0}, overlaps{0}, resumed{0};
    std::atomic<long> launched{0};
    samples ttft, inter_event;
    std::mutex errors_mutex;
    std::map<std::string, long> errors;
    void error(std::string const& what)
    {
        std::lock_guard lock(errors_mutex);
        ++errors[what];
    }
};

std::string mint_jwt(std::string const& secret, std::string const& sub)
{
    jwt_t* jwt = nullptr;
    if (jwt_new(&jwt) != 0)
        throw std::runtime_error("jwt_new failed");
    jwt_add_grant(jwt, "sub", sub.c_str());
    jwt_add_grant_int(jwt, "exp", std::time(nullptr) + 3600);
    jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<unsigned char const*>(secret.data()),
                static_cast<int>(secret.size()));
    char* encoded = jwt_encode_str(jwt);
    std::string out = encoded ? encoded : "";
    std::free(encoded);
    jwt_free(jwt);
    return out;
}

// Boost.JSON prints doubles as 1.5E2; benchmark lines are read by people
// too, so doubles are written with fixed precision instead.
void write_json(std::string& out, json::value const& v)
{
    switch (v.kind())
    {
    case json::kind::double_:
    {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", v.get_double());
        out += buf;
        break;
    }
    case json::kind::object:
    {
        out += '{';
        bool first = true;
        for (auto const& [k, val] : v.get_object())
        {
            if (!first)
                out += ',';
            first = false;
            out += json::serialize(json::string_view(k));
            out += ':';
            write_json(out, val);
        }
        out += '}';
        break;
    }
    default:
        out += json::serialize(v);
    }
}

long rss_kb(int pid, char const* field)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0)
            return std::stol(line.substr(std::strlen(field) + 1));
    return 0;
}

// utime + stime of @p pid, in seconds (/proc/PID/stat fields 14 and 15).
double cpu_seconds(int pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto const close = stat.rfind(')'); // the command name may hold spaces
    if (close == std::string::npos)
        return 0;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i)
    {
        if (i == 14)
            utime = std::stoull(f);
        if (i == 15)
            stime = std::stoull(f);
    }
    return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

// One generation as seen by the client.
struct stream_state
{
    std::string request_id;
    std::string message_id;
    clock_type::time_point sent;
    clock_type::time_point last_event;
    bool got_first = false;
    long expected_offset = 0; // UTF-16 units received so far
    long events = 0;
    bool resumed = false;
    std::vector<std::uint32_t> gaps_us;
};

class load_client
{
public:
    load_client(net::io_context& ioc, options const& o, totals& t) : ioc_(ioc), o_(o), t_(t)
    {
        auto url = boost::urls::parse_uri(o.url).value();
        host_ = url.host();
        port_ = url.has_port() ? std::string(url.port()) : "80";
        target_ = std::string(url.encoded_path());
        if (target_.empty())
            target_ = "/ws";
        query_ = std::string(url.encoded_query());
    }

    bool budget_left()
    {
        if (o_.requests > 0)
            return t_.launched.fetch_add(1) < o_.requests;
        return clock_type::now() < deadline_;
    }
    void set_deadline(clock_type::time_point d) { deadline_ = d; }

    awaitable<std::unique_ptr<websocket::stream<beast::tcp_stream>>> connect(int user)
    {
        auto ex = co_await net::this_coro::executor;
        tcp::resolver resolver(ex);
        auto results = co_await resolver.async_resolve(host_, port_, use_awaitable);
        auto ws = std::make_unique<websocket::stream<beast::tcp_stream>>(ex);
        beast::get_lowest_layer(*ws).expires_after(std::chrono::seconds(10));
        co_await beast::get_lowest_layer(*ws).async_connect(results, use_awaitable);
        beast::get_lowest_layer(*ws).expires_never();
        ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        std::string target = target_ + "?";
        if (!query_.empty())
            target += query_ + "&";
        std::string const user_name = o_.user_prefix + std::to_string(user);
        if (!o_.jwt_secret.empty())
            target += "token=" + mint_jwt(o_.jwt_secret, user_name);
        else if (!o_.token.empty())
            target += "token=" + o_.token;
        else
            target += "user=" + user_name;
        ws->read_message_max(8 * 1024 * 1024);
        co_await ws->async_handshake(host_ + ":" + port_, target, use_awaitable);
        co_return ws;
    }

    // Idle mode: connect, then hold the socket open without traffic.
    awaitable<void> run_idle(
        int index,
        std::shared_ptr<std::vector<std::unique_ptr<websocket::stream<beast::tcp_stream>>>> keep,
        std::shared_ptr<std::atomic<int>> connected)
    {
        try
        {
            auto& ws = keep->at(static_cast<std::size_t>(index));
            ws = co_await connect(index);
            if (o_.idle_generate)
            {
                // A client that asks for a stream and never reads it.
                json::object frame{{"type", "generate"}, {"id", "idle"}, {"content", o_.prompt}};
                co_await ws->async_write(net::buffer(json::serialize(frame)), use_awaitable);
            }
            ++*connected;
        }
        catch (boost::system::system_error const& e)
        {
            t_.connect_failures++;
            t_.error("connect: " + e.code().message());
        }
    }

    // One connection: keeps streams_per_conn generations in flight until the
    // budget is used up.
    awaitable<void> run_connection(int index)
    {
        std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;
        try
        {
            ws = co_await connect(index);
        }
        catch (boost::system::system_error const& e)
        {
            t_.connect_failures++;
            t_.error("connect: " + e.code().message());
            co_return;
        }
        std::unordered_map<std::string, std::shared_ptr<stream_state>> by_request, by_message;
        int in_flight = 0;
        long seq = 0;
        auto launch = [&]() -> awaitable<bool>
        {
            if (!budget_left())
                co_return false;
            auto s = std::make_shared<stream_state>();
            s->request_id = "r" + std::to_string(index) + "-" + std::to_string(seq++);
            json::object frame{{"type", "generate"}, {"id", s->request_id}, {"content", o_.prompt}};
            s->sent = clock_type::now();
            by_request[s->request_id] = s;
            ++in_flight;
            t_.started++;
            co_await ws->async_write(net::buffer(json::serialize(frame)), use_awaitable);
            co_return true;
        };
        for (int i = 0; i < o_.streams_per_conn; ++i)
            if (!co_await launch())
                break;

        beast::flat_buffer buffer;
        while (in_flight > 0)
        {
            std::size_t n = 0;
            try
            {
                n = co_await ws->async_read(buffer, use_awaitable);
            }
            catch (boost::system::system_error const& e)
            {
                t_.failed += in_flight;
                t_.error("read: " + e.code().message());
                co_return;
            }
            auto const now = clock_type::now();
            t_.bytes += static_cast<long>(n);
            std::string_view text(static_cast<char const*>(buffer.data().data()), buffer.size());
            json::error_code ec;
            auto v = json::parse(text, ec);
            buffer.consume(buffer.size());
            if (ec || !v.is_object())
            {
                t_.error("unparseable frame");
                continue;
            }
            auto const& obj = v.as_object();
            auto type = obj.contains("type") ? json::value_to<std::string>(obj.at("type")) : "";
            if (type == "ack")
            {
                auto rid = json::value_to<std::string>(obj.at("id"));
                auto it = by_request.find(rid);
                if (it == by_request.end())
                    continue;
                it->second->message_id = json::value_to<std::string>(obj.at("messageId"));
                by_message[it->second->message_id] = it->second;
                by_request.erase(it);
                continue;
            }
            if (type == "error")
            {
                t_.error("error event: " + (obj.contains("code")
                                                ? json::value_to<std::string>(obj.at("code"))
                                                : "?"));
                if (obj.contains("id"))
                    if (auto it = by_request.find(json::value_to<std::string>(obj.at("id")));
                        it != by_request.end())
                    {
                        by_request.erase(it);
                        --in_flight;
                        t_.failed++;
                        if (co_await launch())
                        {
                        }
                    }
                continue;
            }
            if (!obj.contains("messageId"))
                continue;
            auto it = by_message.find(json::value_to<std::string>(obj.at("messageId")));
            if (it == by_message.end())
                continue;
            auto& s = *it->second;
            t_.events++;
            s.events++;
            if (s.got_first)
                s.gaps_us.push_back(static_cast<std::uint32_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(now - s.last_event)
                        .count()));
            s.last_event = now;
            if (type == "text-delta")
            {
                if (!s.got_first)
                {
                    s.got_first = true;
                    t_.ttft.add({static_cast<std::uint32_t>(
                        std::chrono::duration_cast<std::chrono::microseconds>(now - s.sent)
                            .count())});
                }
                auto const offset = obj.at("offset").to_number<long>();
                auto delta = obj.at("delta").as_string();
                if (offset != s.expected_offset)
                {
                    (offset > s.expected_offset ? t_.gaps : t_.overlaps)++;
                    t_.error("offset mismatch");
                }
                s.expected_offset =
                    offset +
                    static_cast<long>(chatstream::core::utf16_length({delta.data(), delta.size()}));
                if (o_.resume_at > 0 && !s.resumed && o_.expected_tokens > 0 &&
                    s.events >= static_cast<long>(o_.resume_at * o_.expected_tokens))
                {
                    // Drop this stream here and pick it up on a fresh connection.
                    s.resumed = true;
                    auto held = it->second; // erase destroys the map's copy
                    by_message.erase(it);
                    --in_flight;
                    net::co_spawn(ioc_, resume(index, std::move(held)), net::detached);
                    if (co_await launch())
                    {
                    }
                }
            }
            else if (type == "finish")
            {
                auto status = json::value_to<std::string>(obj.at("status"));
                t_.inter_event.add(s.gaps_us);
                (status == "complete" ? t_.completed : t_.failed)++;
                if (status != "complete")
                    t_.error("finish status " + status);
                by_message.erase(it);
                --in_flight;
                if (co_await launch())
                {
                }
            }
        }
        beast::error_code ignored;
        co_await ws->async_close(websocket::close_code::normal,
                                 net::redirect_error(use_awaitable, ignored));
    }

    // Resume a stream on a new connection from the offset received so far.
    awaitable<void> resume(int index, std::shared_ptr<stream_state> s)
    {
        t_.resumed++;
        try
        {
            auto ws = co_await connect(index);
            json::object frame{{"type", "subscribe"},
                               {"messageId", s->message_id},
                               {"fromOffset", s->expected_offset}};
            co_await ws->async_write(net::buffer(json::serialize(frame)), use_awaitable);
            beast::flat_buffer buffer;
            for (;;)
            {
                co_await ws->async_read(buffer, use_awaitable);
                auto v = json::parse(std::string_view(
                    static_cast<char const*>(buffer.data().data()), buffer.size()));
                buffer.consume(buffer.size());
                auto const& obj = v.as_object();
                auto type = json::value_to<std::string>(obj.at("type"));
                if (type == "text-delta")
                {
                    auto const offset = obj.at("offset").to_number<long>();
                    if (offset != s->expected_offset)
                        (offset > s->expected_offset ? t_.gaps : t_.overlaps)++;
                    auto delta = obj.at("delta").as_string();
                    s->expected_offset = offset + static_cast<long>(chatstream::core::utf16_length(
                                                      {delta.data(), delta.size()}));
                    t_.events++;
                }
                else if (type == "finish")
                {
                    auto status = json::value_to<std::string>(obj.at("status"));
                    (status == "complete" ? t_.completed : t_.failed)++;
                    break;
                }
                else if (type == "error")
                {
                    t_.failed++;
                    t_.error("resume error");
                    break;
                }
            }
            beast::error_code ignored;
            co_await ws->async_close(websocket::close_code::normal,
                                     net::redirect_error(use_awaitable, ignored));
        }
        catch (std::exception const& e)
        {
            t_.failed++;
            t_.error(std::string("resume: ") + e.what());
        }
    }

private:
    net::io_context& ioc_;
    options const& o_;
    totals& t_;
    std::string host_, port_, target_, query_;
    clock_type::time_point deadline_;
};

} // namespace

int main(int argc, char** argv)
{
    options o;
    CLI::App app{"chatstream-load: WebSocket load generator for chatstream"};
    app.add_option("--url", o.url, "ws://HOST:PORT/ws")->capture_default_str();
    app.add_option("--connections", o.connections)->capture_default_str();
    app.add_option("--streams-per-conn", o.streams_per_conn)->capture_default_str();
    app.add_option("--prompt", o.prompt)->capture_default_str();
    auto* dur = app.add_option("--duration", o.duration, "seconds");
    app.add_option("--requests", o.requests, "total generations")->excludes(dur);
    app.add_option("--ramp", o.ramp, "seconds to open all connections")->capture_default_str();
    app.add_option("--resume-at", o.resume_at,
                   "disconnect after this fraction of events and resume");
    app.add_option("--token", o.token, "bearer token for every connection");
    app.add_option("--jwt-secret", o.jwt_secret, "mint an HS256 token per connection");
    app.add_option("--threads", o.threads, "client I/O threads")->capture_default_str();
    app.add_option("--server-pid", o.server_pid, "report this process's RSS");
    app.add_option("--label", o.label, "free-form tag copied into the JSON line");
    app.add_option("--user-prefix", o.user_prefix,
                   "user names are PREFIX0, PREFIX1, ... (one per connection)")
        ->capture_default_str();
    app.add_option("--idle-seconds", o.idle_seconds,
                   "open --connections idle sockets, hold them, report RSS");
    app.add_flag(
        "--idle-generate", o.idle_generate,
        "with --idle-seconds: each connection sends one generate (--prompt) and never reads");
    CLI11_PARSE(app, argc, argv);
    if (o.duration <= 0 && o.requests <= 0)
        o.requests = static_cast<long>(o.connections) * o.streams_per_conn;
    if (auto pos = o.prompt.find("/tokens "); pos != std::string::npos)
        o.expected_tokens = std::stol(o.prompt.substr(pos + 8));
    long delay_ms = 0;
    if (auto pos = o.prompt.find("/delay "); pos != std::string::npos)
        delay_ms = std::stol(o.prompt.substr(pos + 7));

    totals t;
    net::io_context ioc(o.threads);
    load_client client(ioc, o, t);
    double const cpu_before = o.server_pid ? cpu_seconds(o.server_pid) : 0;
    auto const start = clock_type::now();
    client.set_deadline(start + std::chrono::milliseconds(static_cast<long>(o.duration * 1000)));

    if (o.idle_seconds > 0)
    {
        auto keep =
            std::make_shared<std::vector<std::unique_ptr<websocket::stream<beast::tcp_stream>>>>(
                o.connections);
        auto connected = std::make_shared<std::atomic<int>>(0);
        long const rss_before = o.server_pid ? rss_kb(o.server_pid, "VmRSS:") : 0;
        for (int i = 0; i < o.connections; ++i)
            net::co_spawn(ioc, client.run_idle(i, keep, connected), net::detached);
        ioc.run();
        ioc.restart();
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<long>(o.idle_seconds * 1000)));
        long const rss_after = o.server_pid ? rss_kb(o.server_pid, "VmRSS:") : 0;
        json::object out;
        out["bench"] = "chatstream-load";
        out["mode"] = o.idle_generate ? "never-read" : "idle";
        if (o.idle_generate)
            out["prompt"] = o.prompt;
        if (!o.label.empty())
            out["label"] = o.label;
        out["connections"] = o.connections;
        out["connected"] = connected->load();
        out["connect_failures"] = t.connect_failures.load();
        if (o.server_pid)
        {
            out["server_rss_before_kb"] = rss_before;
            out["server_rss_kb"] = rss_after;
            out["server_peak_rss_kb"] = rss_kb(o.server_pid, "VmHWM:");
            out["rss_per_connection_kb"] =
                connected->load() ? double(rss_after - rss_before) / connected->load() : 0.0;
        }
        std::string line;
        write_json(line, out);
        std::cout << line << std::endl;
        return connected->load() == o.connections ? 0 : 1;
    }

    // Ramp: connections are spread evenly over --ramp seconds.
    for (int i = 0; i < o.connections; ++i)
    {
        auto delay = std::chrono::microseconds(
            static_cast<long>(o.ramp * 1e6 * i / std::max(1, o.connections)));
        net::co_spawn(
            ioc,
            [&client, i, delay, &ioc]() -> awaitable<void>
            {
                net::steady_timer timer(ioc, delay);
                co_await timer.async_wait(use_awaitable);
                co_await client.run_connection(i);
            },
            net::detached);
    }

    std::atomic<bool> done{false};
    long peak_rss = 0;
    std::thread progress(
        [&]
        {
            long last_events = 0;
            while (!done)
            {
                std::this_thread::sleep_for(std::chrono::seconds(1));
                auto ev = t.events.load();
                if (o.server_pid)
                    peak_rss = std::max(peak_rss, rss_kb(o.server_pid, "VmRSS:"));
                std::fprintf(stderr, "\r[load] %.0fs streams ok=%ld failed=%ld events/s=%ld      ",
                             std::chrono::duration<double>(clock_type::now() - start).count(),
                             t.completed.load(), t.failed.load(), ev - last_events);
                last_events = ev;
            }
            std::fprintf(stderr, "\n");
        });
    std::vector<std::thread> pool;
    for (int i = 1; i < o.threads; ++i)
        pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& th : pool)
        th.join();
    auto const seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    double const server_cpu = o.server_pid ? cpu_seconds(o.server_pid) - cpu_before : 0;
    done = true;
    progress.join();

    json::object out;
    out["bench"] = "chatstream-load";
    if (!o.label.empty())
        out["label"] = o.label;
    out["connections"] = o.connections;
    out["streams_per_conn"] = o.streams_per_conn;
    out["prompt"] = o.prompt;
    out["seconds"] = seconds;
    out["streams_completed"] = t.completed.load();
    out["streams_failed"] = t.failed.load();
    out["connect_failures"] = t.connect_failures.load();
    out["events"] = t.events.load();
    out["events_per_sec"] = t.events.load() / seconds;
    out["bytes_per_sec"] = t.bytes.load() / seconds;
    if (o.expected_tokens > 0)
    {
        // Tokens, not frames: a backed-up socket carries several per frame.
        auto const tokens = double(t.completed.load()) * double(o.expected_tokens);
        out["tokens"] = tokens;
        out["tokens_per_sec"] = tokens / seconds;
        if (delay_ms > 0)
            out["offered_tokens_per_sec"] =
                double(o.connections) * o.streams_per_conn * 1000.0 / double(delay_ms);
        if (o.server_pid && server_cpu > 0)
            out["tokens_per_server_cpu_second"] = tokens / server_cpu;
    }
    if (o.server_pid)
        out["server_cpu_seconds"] = server_cpu;
    out["ttft"] = t.ttft.summary();
    out["inter_event"] = t.inter_event.summary();
    if (o.resume_at > 0)
    {
        out["resumed"] = t.resumed.load();
        out["gaps"] = t.gaps.load();
        out["overlaps"] = t.overlaps.load();
    }
    if (o.server_pid)
    {
        out["server_rss_kb"] = rss_kb(o.server_pid, "VmRSS:");
        out["server_peak_rss_kb"] = std::max(peak_rss, rss_kb(o.server_pid, "VmHWM:"));
    }
    json::object errs;
    for (auto const& [k, v] : t.errors)
        errs[k] = v;
    out["errors"] = errs;
    std::string line;
    write_json(line, out);
    std::cout << line << std::endl;
    for (char const* limit : {"error event: rate_limited", "error event: quota_exceeded"})
        if (auto it = t.errors.find(limit); it != t.errors.end())
            std::cerr
                << "hint: " << it->second << " generations were refused (" << (limit + 13)
                << "): start the server with --rate-limit 0 --daily-message-limit 0 for load runs, "
                   "or spread the load over more users (--connections, --user-prefix)\n";
    // The exit status is the verdict bench_load_smoke relies on: a run that
    // completed nothing, resumed nothing when asked to, or read frames it
    // could not parse failed, whatever else it counted.
    std::vector<std::string> verdict;
    if (t.failed.load() > 0)
        verdict.push_back("failed streams");
    if (t.connect_failures.load() > 0)
        verdict.push_back("connect failures");
    if (t.gaps.load() > 0 || t.overlaps.load() > 0)
        verdict.push_back("gaps or overlaps after resume");
    if (t.completed.load() == 0)
        verdict.push_back("no stream completed");
    if (o.requests > 0 && t.completed.load() != o.requests)
        verdict.push_back(std::to_string(t.completed.load()) + " of " + std::to_string(o.requests) +
                          " requested streams completed");
    if (o.resume_at > 0 && t.resumed.load() == 0)
        verdict.push_back("no stream resumed");
    if (t.errors.count("unparseable frame"))
        verdict.push_back("unparseable frames");
    for (auto const& why : verdict)
        std::cerr << "chatstream-load: FAIL: " << why << "\n";
    return verdict.empty() ? 0 : 1;
}
