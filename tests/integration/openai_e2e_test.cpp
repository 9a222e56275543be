// End-to-end with the openai provider: the real `chatstream serve --provider
// openai` pointed at a fake OpenAI-compatible upstream (a Beast/Asio server on
// 127.0.0.1:0 in a thread of its own, inside this test), driven over a real
// WebSocket. Covers split chunks (inside UTF-8), the tool loop across two
// upstream requests, upstream errors, and cancel closing the upstream socket.
#include "server_process.hpp"
#include "ws_helpers.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/database.hpp"

#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <poll.h>
#include <thread>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

using namespace chatstream;
using namespace chatstream::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace
{

constexpr char const* api_key_var = "CHATSTREAM_E2E_UPSTREAM_KEY";
constexpr char const* api_key = "sk-e2e-0123456789abcdef";

using upstream_request = http::request<http::string_body>;

/// A fake OpenAI-compatible upstream. Connections are served one after the
/// other on the fake's own thread (the provider opens one per step, with
/// `Connection: close`); @p handler writes the response with the helpers below.
class fake_openai
{
public:
    using handler = std::function<void(tcp::socket&, upstream_request const&, int index)>;

    explicit fake_openai(handler h)
        : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
          handler_(std::move(h))
    {
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { run(); });
    }
    ~fake_openai()
    {
        stopping_ = true;
        net::io_context ioc; // unblocks the accept
        tcp::socket s(ioc);
        beast::error_code ec;
        s.connect(acceptor_.local_endpoint(), ec);
        thread_.join();
    }
    fake_openai(fake_openai const&) = delete;
    fake_openai& operator=(fake_openai const&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    /// Waits until @p n connections were fully handled (the handler returned).
    bool wait_handled(int n, std::chrono::milliseconds limit = 15s)
    {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, limit, [&] { return handled_ >= n; });
    }
    std::vector<upstream_request> requests()
    {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::vector<std::string> errors()
    {
        std::lock_guard lock(mutex_);
        return errors_;
    }

private:
    void run()
    {
        for (int i = 0;; ++i)
        {
            tcp::socket sock(ioc_);
            beast::error_code ec;
            acceptor_.accept(sock, ec);
            if (ec || stopping_)
                return;
            try
            {
                sock.set_option(tcp::no_delay(true));
                beast::flat_buffer buffer;
                upstream_request req;
                http::read(sock, buffer, req);
                {
                    std::lock_guard lock(mutex_);
                    requests_.push_back(req);
                }
                handler_(sock, req, i);
            }
            catch (std::exception const& e)
            {
                std::lock_guard lock(mutex_);
                errors_.push_back(e.what());
            }
            sock.close(ec);
            {
                std::lock_guard lock(mutex_);
                ++handled_;
            }
            cv_.notify_all();
        }
    }

    net::io_context ioc_;
    tcp::acceptor acceptor_;
    handler handler_;
    unsigned short port_ = 0;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    int handled_ = 0;
    std::vector<upstream_request> requests_;
    std::vector<std::string> errors_;
};

// ---- response helpers (blocking, on the fake's thread) ----

void put(tcp::socket& s, std::string_view bytes)
{
    net::write(s, net::buffer(bytes.data(), bytes.size()));
}

void sse_head(tcp::socket& s)
{
    put(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}

/// @p body as HTTP chunks cut at @p cuts (byte offsets), each its own write.
void chunks(tcp::socket& s, std::string_view body, std::vector<std::size_t> cuts = {})
{
    cuts.push_back(body.size());
    std::size_t at = 0;
    for (auto c : cuts)
    {
        if (c <= at)
            continue;
        std::ostringstream size;
        size << std::hex << (c - at);
        put(s, size.str() + "\r\n" + std::string(body.substr(at, c - at)) + "\r\n");
        at = c;
    }
}
void end_chunks(tcp::socket& s)
{
    put(s, "0\r\n\r\n");
}

void json_response(tcp::socket& s, int status, std::string_view body, std::string_view extra = {})
{
    put(s, "HTTP/1.1 " + std::to_string(status) +
               " X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n" + std::string(extra) + "\r\n" +
               std::string(body));
}

/// Waits for the peer to close (EOF or reset); when it saw that.
std::optional<clock_type::time_point> wait_closed(tcp::socket& s, std::chrono::milliseconds limit)
{
    auto const deadline = clock_type::now() + limit;
    char b[4096];
    for (;;)
    {
        auto const left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0)
            return std::nullopt;
        pollfd p{s.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            return std::nullopt;
        beast::error_code ec;
        s.read_some(net::buffer(b), ec);
        if (ec)
            return clock_type::now();
    }
}

std::string sse(std::string_view data)
{
    return "data: " + std::string(data) + "\n\n";
}
std::string content(std::string_view text)
{
    return sse(R"({"choices":[{"index":0,"delta":{"content":)" +
               json::serialize(json::value(json::string(text))) + "}}]}");
}
std::string finish(std::string_view reason)
{
    return sse(R"({"choices":[{"index":0,"delta":{},"finish_reason":")" + std::string(reason) +
               "\"}]}");
}
std::string usage(int in, int out)
{
    return sse(R"({"choices":[],"usage":{"prompt_tokens":)" + std::to_string(in) +
               R"(,"completion_tokens":)" + std::to_string(out) + "}}");
}
std::string const done = "data: [DONE]\n\n";
std::string reasoning_content(std::string_view text)
{
    return sse(R"({"choices":[{"index":0,"delta":{"content":null,"reasoning_content":)" +
               json::serialize(json::value(json::string(text))) + "}}]}");
}
std::string usage_with_reasoning(int in, int out, int reasoning)
{
    return sse(R"({"choices":[],"usage":{"prompt_tokens":)" + std::to_string(in) +
               R"(,"completion_tokens":)" + std::to_string(out) +
               R"(,"completion_tokens_details":{"reasoning_tokens":)" + std::to_string(reasoning) +
               "}}}");
}

std::string tool_start(std::string_view id, std::string_view name)
{
    return sse(
        R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":")" +
        std::string(id) + R"(","type":"function","function":{"name":")" + std::string(name) +
        R"(","arguments":""}}]}}]})");
}
std::string tool_args(std::string_view fragment)
{
    return sse(
        R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":)" +
        json::serialize(json::value(json::string(fragment))) + "}}]}}]}");
}

// Cut points inside every multi-byte UTF-8 sequence, inside `data:` and at
// every line end.
std::vector<std::size_t> awkward_cuts(std::string const& body)
{
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < body.size(); ++i)
    {
        auto const c = static_cast<unsigned char>(body[i]);
        if ((c & 0xC0) == 0x80 || body.compare(i - 1, 2, "da") == 0 || body[i] == '\n')
            cuts.push_back(i);
    }
    return cuts;
}

// The message id of a generation read by read_generation (ws_helpers.hpp).
std::string message_id_of(stream_result const& r)
{
    return str(r.ack.at("messageId"));
}

struct e2e
{
    temp_dir dir;
    fake_openai upstream;
    server_process server;

    explicit e2e(fake_openai::handler h, std::vector<std::string> extra = {})
        : upstream(std::move(h)),
          server(dir.file("chat.db"), server_args(upstream.url(), std::move(extra)),
                 {std::string(api_key_var) + "=" + api_key})
    {
    }
    static std::vector<std::string> server_args(std::string url, std::vector<std::string> extra)
    {
        std::vector<std::string> args{"--provider", "openai",      "--upstream-url", std::move(url),
                                      "--model",    "gpt-4o-mini", "--api-key-env",  api_key_var};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    ~e2e()
    {
        for (auto const& e : upstream.errors())
            UNSCOPED_INFO("fake upstream: " << e);
        // The key is never logged.
        CHECK(server.log().find(api_key) == std::string::npos);
    }
};

json::array const& messages_of(upstream_request const& r, json::value& holder)
{
    holder = json::parse(r.body());
    return holder.at("messages").as_array();
}

} // namespace

TEST_CASE("openai e2e: a streamed answer in awkward chunks is stored whole, with usage and cost",
          "[integration][openai]")
{
    std::string const answer = "Bonjour, café naïve 日本語 🚀 👍🏽 𝄞 done.";
    e2e t(
        [](tcp::socket& s, upstream_request const&, int)
        {
            std::string body = ": keep-alive\n\n";
            for (auto tok : {"Bonjour", ",", " café", " naïve", " 日本語", " 🚀", " 👍🏽", " 𝄞",
                             " done", "."})
                body += content(tok);
            body += finish("stop") + usage(21, 9) + done;
            sse_head(s);
            chunks(s, body, awkward_cuts(body));
            end_chunks(s);
        });
    ws_client c(t.server.port());
    c.send(generate("Say hello in French"));
    auto r = read_generation(c);
    CHECK(str(r.finish.at("status")) == "complete");
    CHECK(str(r.finish.at("finishReason")) == "stop");
    CHECK(r.finish.at("usage").at("inputTokens").as_int64() == 21);
    CHECK(r.finish.at("usage").at("outputTokens").as_int64() == 9);
    CHECK(r.text == answer);

    auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
    REQUIRE(str(m.at("type")) == "result");
    auto const& data = m.at("data").as_object();
    CHECK(str(data.at("content")) == answer);
    CHECK(str(data.at("status")) == "complete");
    CHECK(data.at("inputTokens").as_int64() == 21);
    CHECK(str(data.at("model")) == "gpt-4o-mini"); // --model, the request named none
    CHECK(data.at("outputTokens").as_int64() == 9);
    REQUIRE(data.at("cost").is_double());
    CHECK(data.at("cost").as_double() == Approx((21 * 0.15 + 9 * 0.60) / 1e6));

    // What the upstream saw: the answer, then the auto-title of this "New Chat".
    REQUIRE(t.upstream.wait_handled(2));
    auto reqs = t.upstream.requests();
    REQUIRE(reqs.size() == 2);
    {
        json::value title_body;
        auto const& title_msgs = messages_of(reqs[1], title_body);
        CHECK_FALSE(title_body.as_object().contains("tools"));
        CHECK(title_body.at("max_tokens").as_int64() == 24);
        REQUIRE(title_msgs.size() == 2);
        CHECK(str(title_msgs.front().at("role")) == "system");
        CHECK(str(title_msgs.back().at("content")) == "Say hello in French");
    }
    // The (same scripted) upstream answer, cleaned, becomes the title.
    std::string title;
    for (int i = 0; i < 100 && title != "Bonjour, café naïve 日本語 🚀 👍🏽 𝄞 done";
         ++i)
    {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        auto list = c.query("listConversations", json::object{});
        title = str(list.at("data").at("conversations").at(0).at("title"));
    }
    CHECK(title == "Bonjour, café naïve 日本語 🚀 👍🏽 𝄞 done");
    auto const& req = reqs[0];
    CHECK(req.method() == http::verb::post);
    CHECK(req.target() == "/v1/chat/completions");
    CHECK(req[http::field::authorization] == std::string("Bearer ") + api_key);
    json::value body;
    auto const& msgs = messages_of(req, body);
    CHECK(str(body.at("model")) == "gpt-4o-mini");
    CHECK(body.at("stream").as_bool());
    CHECK(body.at("stream_options").at("include_usage").as_bool());
    REQUIRE(!msgs.empty());
    CHECK(str(msgs.back().at("role")) == "user");
    CHECK(str(msgs.back().at("content")) == "Say hello in French");
    std::vector<std::string> tools;
    for (auto const& tool : body.at("tools").as_array())
        tools.push_back(str(tool.at("function").at("name")));
    CHECK_THAT(tools, Catch::Matchers::VectorContains(std::string("calculator")));
    CHECK_THAT(tools, Catch::Matchers::VectorContains(std::string("datetime")));
    CHECK_THAT(tools, Catch::Matchers::VectorContains(std::string("lookup")));
}

TEST_CASE("openai e2e: tool call round trip through the server's tool loop",
          "[integration][openai]")
{
    std::string const before = "Let me compute: ";
    std::string const args = R"x({"expression": "6*(3+4)"})x";
    e2e t(
        [&](tcp::socket& s, upstream_request const&, int index)
        {
            sse_head(s);
            if (index == 0)
            {
                std::string body = content(before) + tool_start("call_e2e_1", "calculator");
                for (std::size_t i = 0; i < args.size(); i += 7)
                    body += tool_args(args.substr(i, 7));
                body += finish("tool_calls") + usage(50, 12) + done;
                chunks(s, body, awkward_cuts(body));
            }
            else
            {
                auto body = content("The answer is ") + content("42 ✓.") + finish("stop") +
                            usage(80, 6) + done;
                chunks(s, body, awkward_cuts(body));
            }
            end_chunks(s);
        });
    ws_client c(t.server.port());
    c.send(generate("What is 6*(3+4)?"));
    auto r = read_generation(c);
    CHECK(str(r.finish.at("status")) == "complete");
    CHECK(r.text == before + "The answer is 42 ✓.");

    std::string call_id;
    std::string deltas;
    std::vector<std::string> order;
    for (auto const& e : r.events)
    {
        auto const type = str(e.at("type"));
        if (type.starts_with("tool-"))
            order.push_back(type);
        if (type == "tool-input-start")
        {
            call_id = str(e.at("toolCallId"));
            CHECK(str(e.at("toolName")) == "calculator");
            CHECK(e.at("textPosition").as_int64() ==
                  static_cast<std::int64_t>(core::utf16_length(before)));
        }
        if (type == "tool-input-delta")
            deltas += str(e.at("inputTextDelta"));
        if (type == "tool-input-available")
            CHECK(str(e.at("input").at("expression")) == "6*(3+4)");
        if (type == "tool-output-available")
            CHECK(e.at("output").at("result").as_int64() == 42);
    }
    CHECK(deltas == args);
    REQUIRE(order.size() >= 3);
    CHECK(order.front() == "tool-input-start");
    CHECK(order[order.size() - 2] == "tool-input-available");
    CHECK(order.back() == "tool-output-available");
    CHECK(!call_id.empty());

    // Step 2 carried the assistant tool call and the tool's result. (A third
    // request, the auto-title of this new conversation, may follow.)
    REQUIRE(t.upstream.wait_handled(2));
    auto reqs = t.upstream.requests();
    REQUIRE(reqs.size() >= 2);
    CHECK(reqs[1][http::field::authorization] == std::string("Bearer ") + api_key);
    json::value body;
    auto const& msgs = messages_of(reqs[1], body);
    REQUIRE(msgs.size() >= 3);
    auto const& tool_msg = msgs.back().as_object();
    CHECK(str(tool_msg.at("role")) == "tool");
    CHECK(str(tool_msg.at("tool_call_id")) == "call_e2e_1");
    auto const result = json::parse(str(tool_msg.at("content")));
    CHECK(result.at("success").as_bool());
    CHECK(result.at("result").as_int64() == 42);
    auto const& assistant = msgs[msgs.size() - 2].as_object();
    CHECK(str(assistant.at("role")) == "assistant");
    auto const& call = assistant.at("tool_calls").at(0);
    CHECK(str(call.at("id")) == "call_e2e_1");
    CHECK(str(call.at("function").at("name")) == "calculator");
    CHECK(str(json::parse(str(call.at("function").at("arguments"))).at("expression")) == "6*(3+4)");

    auto calls =
        c.query("getToolCalls", {{"messageId", message_id_of(r)}, {"includePartial", true}});
    auto const& arr = calls.at("data").as_array();
    REQUIRE(arr.size() == 1);
    CHECK(str(arr[0].at("name")) == "calculator");
    CHECK(arr[0].at("isPartial").as_bool() == false);
    CHECK(arr[0].at("textPosition").as_int64() ==
          static_cast<std::int64_t>(core::utf16_length(before)));
    REQUIRE(arr[0].as_object().contains("result"));
    CHECK(json::parse(str(arr[0].at("result"))).at("result").as_int64() == 42);

    auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
    auto const& data = m.at("data").as_object();
    CHECK(str(data.at("content")) == r.text);
    CHECK(data.at("outputTokens").is_int64());
    CHECK(data.at("cost").is_double());
}

TEST_CASE("openai e2e: upstream errors finish with status error and no partial tool call",
          "[integration][openai]")
{
    auto check_no_partial = [](temp_dir const& dir)
    {
        storage::database db(dir.file("chat.db"), storage::open_mode::read_write);
        auto& partial = db.prepare("SELECT count(*) FROM tool_calls WHERE is_partial = 1");
        REQUIRE(partial.executeStep());
        CHECK(partial.getColumn(0).getInt() == 0);
    };

    SECTION("500 with an OpenAI error body")
    {
        e2e t(
            [](tcp::socket& s, upstream_request const&, int)
            {
                json_response(
                    s, 500,
                    R"({"error":{"message":"The server had an error while processing your request.","type":"server_error"}})");
            });
        ws_client c(t.server.port());
        c.send(generate("hi"));
        auto r = read_generation(c);
        CHECK(str(r.finish.at("status")) == "error");
        REQUIRE(r.finish.contains("error"));
        auto const error = str(r.finish.at("error"));
        CHECK_THAT(error, Catch::Matchers::Contains("HTTP 500"));
        CHECK_THAT(error, Catch::Matchers::Contains("The server had an error"));
        auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
        CHECK(str(m.at("data").at("status")) == "error");
        CHECK(str(m.at("data").at("error")) == error);
        auto calls =
            c.query("getToolCalls", {{"messageId", message_id_of(r)}, {"includePartial", true}});
        CHECK(calls.at("data").as_array().empty());
        c.stream().close(websocket::close_code::normal); // else the drain waits for it
        t.server.stop();
        check_no_partial(t.dir);
    }

    SECTION("429 in the step after a tool call: partial text kept, the call final")
    {
        e2e t(
            [](tcp::socket& s, upstream_request const&, int index)
            {
                if (index == 0)
                {
                    sse_head(s);
                    chunks(s, content("Checking. ") + tool_start("call_rl", "calculator") +
                                  tool_args(R"({"expression":)") + tool_args(R"("2^10"})") +
                                  finish("tool_calls") + done);
                    end_chunks(s);
                }
                else
                    json_response(s, 429,
                                  R"({"error":{"message":"Rate limit reached for gpt-4o-mini"}})",
                                  "Retry-After: 7\r\n");
            });
        ws_client c(t.server.port());
        c.send(generate("2^10?"));
        auto r = read_generation(c);
        CHECK(str(r.finish.at("status")) == "error");
        auto const error = str(r.finish.at("error"));
        CHECK_THAT(error, Catch::Matchers::Contains("rate limit"));
        CHECK_THAT(error, Catch::Matchers::Contains("retry after 7"));
        CHECK(r.text == "Checking. ");
        auto calls =
            c.query("getToolCalls", {{"messageId", message_id_of(r)}, {"includePartial", true}});
        auto const& arr = calls.at("data").as_array();
        REQUIRE(arr.size() == 1);
        CHECK(arr[0].at("isPartial").as_bool() == false);
        CHECK(json::parse(str(arr[0].at("result"))).at("result").as_int64() == 1024);
        auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
        CHECK(str(m.at("data").at("status")) == "error");
        CHECK(str(m.at("data").at("content")) == "Checking. ");
        c.stream().close(websocket::close_code::normal); // else the drain waits for it
        t.server.stop();
        check_no_partial(t.dir);
    }

    SECTION("the stream breaks in the middle of a tool call's arguments")
    {
        e2e t(
            [](tcp::socket& s, upstream_request const&, int)
            {
                sse_head(s);
                chunks(s, content("Partial ") + tool_start("call_cut", "calculator") +
                              tool_args(R"({"expre)"));
                // RST, no terminating chunk.
                s.set_option(net::socket_base::linger(true, 0));
                s.close();
            });
        ws_client c(t.server.port());
        c.send(generate("cut"));
        auto r = read_generation(c);
        CHECK(str(r.finish.at("status")) == "error");
        CHECK(!str(r.finish.at("error")).empty());
        CHECK(r.text == "Partial ");
        auto calls =
            c.query("getToolCalls", {{"messageId", message_id_of(r)}, {"includePartial", true}});
        CHECK(calls.at("data").as_array().empty());
        auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
        CHECK(str(m.at("data").at("content")) == "Partial ");
        c.stream().close(websocket::close_code::normal); // else the drain waits for it
        t.server.stop();
        check_no_partial(t.dir);
    }
}

TEST_CASE("openai e2e: cancel during a hanging upstream closes the upstream connection",
          "[integration][openai]")
{
    std::mutex mutex;
    std::optional<clock_type::time_point> closed_at;
    e2e t(
        [&](tcp::socket& s, upstream_request const&, int)
        {
            sse_head(s);
            chunks(s, content("Thinking"));
            // ...and nothing more: hangs until the client goes away.
            auto when = wait_closed(s, 20s);
            std::lock_guard lock(mutex);
            closed_at = when;
        });
    ws_client c(t.server.port());
    c.send(generate("hang"));
    auto const message_id = str(c.read_until("ack").at("messageId"));
    auto const first = c.read_until("text-delta", message_id);
    CHECK(str(first.at("delta")) == "Thinking");

    auto const sent = clock_type::now();
    c.send(json::object{{"type", "cancel"}, {"id", "c1"}, {"messageId", message_id}});
    json::object fin;
    for (;;)
    {
        auto e = c.read();
        if (str(e.at("type")) == "finish" && str(e.at("messageId")) == message_id)
        {
            fin = e;
            break;
        }
    }
    auto const took = clock_type::now() - sent;
    CHECK(str(fin.at("status")) == "stopped");
    CHECK(took < 1s);

    REQUIRE(t.upstream.wait_handled(1));
    {
        std::lock_guard lock(mutex);
        REQUIRE(closed_at.has_value());
        CHECK(*closed_at - sent < 1s);
    }
    auto m = c.query("getMessage", {{"messageId", message_id}});
    CHECK(str(m.at("data").at("status")) == "stopped");
    CHECK(str(m.at("data").at("content")) == "Thinking");
}

namespace
{

/// The event types in order, runs of one delta type collapsed.
std::vector<std::string> event_shape(std::vector<json::object> const& events)
{
    std::vector<std::string> out;
    for (auto const& e : events)
    {
        auto const t = str(e.at("type"));
        if (!out.empty() && out.back() == t && t.ends_with("-delta"))
            continue;
        out.push_back(t);
    }
    return out;
}

} // namespace

TEST_CASE("openai e2e: reasoning_content cut inside UTF-8 streams as reasoning, with its tokens in "
          "usage and cost",
          "[integration][openai][reasoning]")
{
    e2e t(
        [](tcp::socket& s, upstream_request const&, int)
        {
            std::string body = reasoning_content("Let") + reasoning_content(" me thínk") +
                               reasoning_content(" 🤔 naïvely") + content("Answer: ") +
                               content("日本語 🚀") + finish("stop") +
                               usage_with_reasoning(10, 40, 30) + done;
            sse_head(s);
            chunks(s, body, awkward_cuts(body));
            end_chunks(s);
        });
    ws_client c(t.server.port());
    c.send(generate("Think first"));
    auto r = read_generation(c); // text and reasoning offsets each contiguous from 0
    CHECK(event_shape(r.events) == std::vector<std::string>{"reasoning-start", "reasoning-delta",
                                                            "reasoning-end", "text-delta",
                                                            "finish"});
    CHECK(r.reasoning == "Let me thínk 🤔 naïvely");
    CHECK(r.text == "Answer: 日本語 🚀");
    auto const& u = r.finish.at("usage");
    CHECK(u.at("outputTokens").as_int64() == 40);
    CHECK(u.at("reasoningTokens").as_int64() == 30);

    auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
    auto const& data = m.at("data").as_object();
    CHECK(str(data.at("reasoning")) == r.reasoning);
    CHECK(str(data.at("content")) == r.text);
    CHECK(data.at("reasoningTokens").as_int64() == 30);
    // gpt-4o-mini has no reasoning rate: its reasoning is charged as output.
    CHECK(data.at("cost").as_double() == Approx((10 * 0.15 + 40 * 0.60) / 1e6));
    CHECK(data.at("generationStartedAt").as_int64() <= data.at("thinkingStartedAt").as_int64());
    CHECK(data.at("thinkingStartedAt").as_int64() <= data.at("thinkingCompletedAt").as_int64());
    CHECK(data.at("thinkingCompletedAt").as_int64() <= data.at("firstTokenAt").as_int64());
    CHECK(data.at("firstTokenAt").as_int64() <= data.at("generationCompletedAt").as_int64());

    // The next request of the conversation does not send the reasoning back.
    c.send(json::object{{"type", "generate"},
                        {"id", "g2"},
                        {"conversationId", r.ack.at("conversationId")},
                        {"content", "And again"}});
    auto r2 = read_generation(c);
    CHECK(str(r2.finish.at("status")) == "complete");
    auto const reqs = t.upstream.requests();
    REQUIRE(reqs.size() >= 2);
    json::value body;
    auto const& msgs = messages_of(reqs.back(), body);
    bool saw_answer = false;
    for (auto const& msg : msgs)
        if (str(msg.at("role")) == "assistant" && msg.at("content") == json::value(r.text))
        {
            saw_answer = true;
            CHECK_FALSE(msg.as_object().contains("reasoning_content"));
        }
    CHECK(saw_answer);
}

TEST_CASE(
    "openai e2e: --think-tags splits <think> out of the content, --send-reasoning sends it back",
    "[integration][openai][reasoning]")
{
    e2e t(
        [](tcp::socket& s, upstream_request const&, int)
        {
            std::string body = content("<thi") + content("nk>Hmm 🤔, six") +
                               content(" times seven</th") + content("ink>It is 42.") +
                               finish("stop") + usage(8, 12) + done;
            sse_head(s);
            chunks(s, body, awkward_cuts(body));
            end_chunks(s);
        },
        {"--think-tags", "--send-reasoning", "--no-auto-title"});
    ws_client c(t.server.port());
    c.send(generate("What is 6*7?"));
    auto r = read_generation(c);
    CHECK(r.reasoning == "Hmm 🤔, six times seven");
    CHECK(r.text == "It is 42.");
    auto m = c.query("getMessage", {{"messageId", message_id_of(r)}});
    CHECK(str(m.at("data").at("reasoning")) == r.reasoning);
    CHECK(str(m.at("data").at("content")) == "It is 42.");

    c.send(json::object{{"type", "generate"},
                        {"id", "g2"},
                        {"conversationId", r.ack.at("conversationId")},
                        {"content", "Sure?"}});
    auto r2 = read_generation(c);
    CHECK(str(r2.finish.at("status")) == "complete");
    auto const reqs = t.upstream.requests();
    REQUIRE(reqs.size() == 2);
    json::value body;
    auto const& msgs = messages_of(reqs[1], body);
    bool sent_back = false;
    for (auto const& msg : msgs)
        if (str(msg.at("role")) == "assistant")
            sent_back = sent_back || (msg.as_object().contains("reasoning_content") &&
                                      str(msg.at("reasoning_content")) == r.reasoning);
    CHECK(sent_back);
}
