// chatstream-soak: minutes of mixed, misbehaving load against a running
// server (issue #9). Each worker thread plays a user who, at random:
// streams a generation to the end (text, tool calls, upstream failures),
// drops the socket mid-stream and resumes on a new one with `fromOffset`,
// drops it and never comes back, cancels mid-stream, or queries. Every
// stream is checked (contiguous offsets, the stored content equals what was
// streamed, the expected status). A sampler records the server's RSS.
//
// Prints one JSON line per minute ("sample") and one at the end ("summary")
// with action counts, errors by kind, and memory growth after warm-up.
// Exit 1 when any check failed. bench/soak.sh wraps it: server, then
// `chatstream check` on the database.
//
//   chatstream-soak --port 8080 --server-pid PID --minutes 3 --workers 24
#include "ws_client.hpp" // ws_client, http_get (tests/integration)

#include "chatstream/core/utf16.hpp"

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace
{

using namespace chatstream::test;
using clock_type = std::chrono::steady_clock;

struct options
{
    unsigned short port = 8080;
    int server_pid = 0;
    double minutes = 3;
    int workers = 24;
    int users = 8;
    double warmup_seconds = 30;
    unsigned seed = 1;
};

long rss_kib(int pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    return 0;
}

struct tally
{
    std::mutex mutex;
    std::map<std::string, long> actions;
    std::map<std::string, long> errors;
    std::atomic<long> streams{0};
    void action(std::string const& k)
    {
        std::lock_guard lock(mutex);
        ++actions[k];
    }
    void error(std::string const& k)
    {
        std::lock_guard lock(mutex);
        ++errors[k];
    }
    long error_total()
    {
        std::lock_guard lock(mutex);
        long n = 0;
        for (auto const& [k, v] : errors)
            n += v;
        return n;
    }
};

std::string s(json::value const& v)
{
    return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

/// One stream as this client sees it: text and the next expected offset.
struct seen
{
    std::string message_id;
    std::string conversation_id;
    std::string text;
    std::uint64_t next = 0;
    std::string status;
};

class worker
{
public:
    worker(options const& o, tally& t, int index)
        : o_(o), t_(t), rng_(o.seed * 7919u + static_cast<unsigned>(index)),
          target_("/ws?user=soak" + std::to_string(index % o.users))
    {
    }

    void run(clock_type::time_point deadline)
    {
        while (clock_type::now() < deadline)
        {
            try
            {
                step();
            }
            catch (std::exception const& e)
            {
                // A read that timed out or a socket the server closed.
                t_.error(std::string("exception: ") + std::string(e.what()).substr(0, 60));
                client_.reset();
            }
        }
    }

private:
    ws_client& client()
    {
        if (!client_)
            client_ = std::make_unique<ws_client>(o_.port, target_);
        return *client_;
    }

    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

    std::string prompt()
    {
        auto const tokens = std::to_string(50 + pick(1500));
        switch (pick(6))
        {
        case 0:
            return "/tokens " + tokens + " /delay " + std::to_string(pick(3));
        case 1:
            return "/tokens " + tokens + R"( /tool calculator {"expression":"(1+2)*)" +
                   std::to_string(pick(100)) + R"("} /delay 1)";
        case 2:
            return R"(/tool datetime {"timezone":"Asia/Tokyo"} /tokens )" + tokens;
        case 3:
            return "/tokens " + tokens + " /fail " + std::to_string(pick(40)) + " /delay 1";
        case 4:
            return R"(/tool lookup {"query":"soak"} /tokens 30)";
        default:
            return "soak hello";
        }
    }

    /// Reads events of @p v until its finish (or @p max_deltas deltas), checking offsets.
    bool read_stream(ws_client& c, seen& v, long max_deltas = -1)
    {
        for (;;)
        {
            auto e = c.read();
            auto const type = s(e.at("type"));
            if (type == "error" && e.contains("id") && s(e.at("id")) == "cancel")
                continue; // a cancel that lost the race with the end: conflict, benign
            if (type == "error")
            {
                t_.error("error event: " + s(e.at("code")));
                v.status = "error-event";
                return true;
            }
            if (!e.contains("messageId") || s(e.at("messageId")) != v.message_id)
                continue;
            if (type == "text-delta")
            {
                auto const offset = static_cast<std::uint64_t>(e.at("offset").as_int64());
                if (offset != v.next)
                    t_.error(offset > v.next ? "gap" : "overlap");
                std::string const delta = s(e.at("delta"));
                v.text += delta;
                v.next = offset + chatstream::core::utf16_length(delta);
                if (max_deltas > 0 && --max_deltas == 0)
                    return false;
            }
            if (type == "finish")
            {
                v.status = s(e.at("status"));
                return true;
            }
        }
    }

    seen start(ws_client& c)
    {
        c.send(json::object{{"type", "generate"}, {"id", "g"}, {"content", prompt()}});
        for (;;)
        {
            auto e = c.read();
            auto const type = s(e.at("type"));
            if (type == "ack")
                return {s(e.at("messageId")), s(e.at("conversationId")), {}, 0, {}};
            if (type == "error" && e.contains("id") && s(e.at("id")) == "cancel")
                continue; // late reply to an earlier cancel on this socket
            if (type == "error")
            {
                t_.error("refused: " + s(e.at("code")));
                return {};
            }
        }
    }

    /// The stored message equals what was streamed, with a terminal status.
    void verify(ws_client& c, seen const& v, std::string const& expect_status = {})
    {
        auto m = c.query("getMessage", {{"messageId", v.message_id}});
        if (s(m.at("type")) != "result")
            return t_.error("getMessage failed");
        auto const& d = m.at("data").as_object();
        auto const status = s(d.at("status"));
        if (status == "generating" || status == "pending")
            return t_.error("not terminal after finish");
        if (s(d.at("content")) != v.text)
            t_.error("stored content differs from stream");
        if (!expect_status.empty() && status != expect_status)
            t_.error("status " + status + ", expected " + expect_status);
        if (status != v.status)
            t_.error("finish said " + v.status + ", stored " + status);
    }

    void step()
    {
        auto const roll = pick(100);
        if (roll < 40)
        {
            t_.action("complete");
            auto& c = client();
            auto v = start(c);
            if (v.message_id.empty())
                return;
            read_stream(c, v);
            ++t_.streams;
            if (v.status != "error-event")
                verify(c, v);
        }
        else if (roll < 60)
        {
            t_.action("disconnect+resume");
            seen v;
            {
                ws_client a(o_.port, target_);
                v = start(a);
                if (v.message_id.empty() || read_stream(a, v, 1 + pick(30)))
                    return;
            } // dropped mid-stream
            ws_client b(o_.port, target_);
            b.send(json::object{
                {"type", "subscribe"}, {"messageId", v.message_id}, {"fromOffset", v.next}});
            read_stream(b, v);
            ++t_.streams;
            if (v.status != "error-event")
                verify(b, v);
        }
        else if (roll < 75)
        {
            t_.action("cancel");
            auto& c = client();
            auto v = start(c);
            if (v.message_id.empty() || read_stream(c, v, 1 + pick(20)))
                return;
            c.send(json::object{{"type", "cancel"}, {"id", "cancel"}, {"messageId", v.message_id}});
            read_stream(c, v);
            ++t_.streams;
            // It may have ended on its own before the cancel arrived.
            if (v.status != "stopped" && v.status != "complete" && v.status != "error")
                t_.error("cancel ended " + v.status);
            verify(c, v);
        }
        else if (roll < 85)
        {
            t_.action("abandon");
            ws_client a(o_.port, target_);
            auto v = start(a);
            if (!v.message_id.empty())
                read_stream(a, v, 1 + pick(10));
        } // gone for good: the generation runs on alone
        else if (roll < 97)
        {
            t_.action("query");
            auto& c = client();
            auto convs = c.query("listConversations", {{"limit", 20}});
            if (s(convs.at("type")) != "result")
                return t_.error("listConversations failed");
            auto const& list = convs.at("data").at("conversations").as_array();
            if (!list.empty())
            {
                auto const& conv =
                    list[static_cast<std::size_t>(pick(static_cast<int>(list.size())))];
                auto msgs = c.query("listMessages", {{"conversationId", conv.at("id")}});
                if (s(msgs.at("type")) != "result")
                    t_.error("listMessages failed");
            }
        }
        else
        {
            t_.action("reconnect");
            client_.reset();
        }
    }

    options const& o_;
    tally& t_;
    std::mt19937 rng_;
    std::string target_;
    std::unique_ptr<ws_client> client_;
};

std::string errors_json(tally& t)
{
    std::lock_guard lock(t.mutex);
    json::object e, a;
    for (auto const& [k, v] : t.errors)
        e[k] = v;
    for (auto const& [k, v] : t.actions)
        a[k] = v;
    return "\"actions\":" + json::serialize(a) + ",\"errors\":" + json::serialize(e);
}

} // namespace

int main(int argc, char** argv)
{
    options o;
    CLI::App app{"chatstream-soak: mixed misbehaving load with consistency checks"};
    app.add_option("--port", o.port)->capture_default_str();
    app.add_option("--server-pid", o.server_pid, "sample this process's RSS");
    app.add_option("--minutes", o.minutes)->capture_default_str();
    app.add_option("--workers", o.workers, "concurrent simulated clients")->capture_default_str();
    app.add_option("--users", o.users)->capture_default_str();
    app.add_option("--warmup-seconds", o.warmup_seconds, "RSS growth is measured after this")
        ->capture_default_str();
    app.add_option("--seed", o.seed)->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    tally t;
    auto const start = clock_type::now();
    auto const deadline = start + std::chrono::milliseconds(static_cast<long>(o.minutes * 60000));
    std::vector<std::thread> threads;
    for (int i = 0; i < o.workers; ++i)
        threads.emplace_back([&, i] { worker(o, t, i).run(deadline); });

    // RSS every second; a JSON line every minute.
    long rss_start = o.server_pid ? rss_kib(o.server_pid) : 0, rss_warm = 0, rss_peak = 0;
    std::vector<std::pair<double, long>> after_warmup;
    for (int sec = 1; clock_type::now() < deadline; ++sec)
    {
        std::this_thread::sleep_until(start + std::chrono::seconds(sec));
        auto const rss = o.server_pid ? rss_kib(o.server_pid) : 0;
        rss_peak = std::max(rss_peak, rss);
        double const at = std::chrono::duration<double>(clock_type::now() - start).count();
        if (at >= o.warmup_seconds)
        {
            if (!rss_warm)
                rss_warm = rss;
            after_warmup.emplace_back(at, rss);
        }
        if (sec % 60 == 0)
        {
            std::printf("{\"bench\":\"soak\",\"sample\":%d,\"rss_kib\":%ld,\"streams\":%ld,"
                        "\"errors\":%ld}\n",
                        sec, rss, t.streams.load(), t.error_total());
            std::fflush(stdout);
        }
    }
    for (auto& th : threads)
        th.join();
    auto const rss_end = o.server_pid ? rss_kib(o.server_pid) : 0;

    // Least-squares slope of RSS after warm-up, in KiB per minute.
    double slope = 0;
    if (after_warmup.size() > 2)
    {
        double n = static_cast<double>(after_warmup.size()), sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (auto const& [x, y] : after_warmup)
            sx += x, sy += static_cast<double>(y), sxx += x * x, sxy += x * static_cast<double>(y);
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60;
    }
    auto const errors = t.error_total();
    std::printf(
        "{\"bench\":\"soak\",\"summary\":true,\"minutes\":%.2f,\"workers\":%d,\"streams\":%ld,"
        "\"rss_start_kib\":%ld,\"rss_after_warmup_kib\":%ld,\"rss_end_kib\":%ld,"
        "\"rss_peak_kib\":%ld,\"rss_growth_after_warmup_kib\":%ld,"
        "\"rss_slope_kib_per_min\":%.1f,%s}\n",
        o.minutes, o.workers, t.streams.load(), rss_start, rss_warm, rss_end, rss_peak,
        rss_end - rss_warm, slope, errors_json(t).c_str());
    return errors == 0 ? 0 : 1;
}
