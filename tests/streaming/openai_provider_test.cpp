// The openai provider against a fake OpenAI-compatible upstream: a Beast
// server on 127.0.0.1:0 in a thread of its own, replaying scripted SSE with
// adversarial chunking, tool-call deltas, error bodies, hangs, resets and
// TLS with a certificate made for the test.
#include "chatstream/streaming/openai_provider.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "openai_test_sink.hpp"
#include "support/temp_db.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <poll.h>

#include <fstream>
#include <mutex>
#include <random>
#include <thread>

using namespace chatstream;
using namespace chatstream::streaming;
using Catch::Matchers::Contains;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace
{

// One accepted connection of the fake upstream; every call blocks (it runs
// on the mock's own thread, never on the client's).
class connection
{
public:
    connection(tcp::socket s, ssl::context* tls) : fd_(s.native_handle())
    {
        s.set_option(tcp::no_delay(true));
        if (tls)
            tls_.emplace(std::move(s), *tls);
        else
            plain_.emplace(std::move(s));
    }

    bool handshake()
    {
        if (!tls_)
            return true;
        beast::error_code ec;
        tls_->handshake(ssl::stream_base::server, ec);
        if (!ec)
            if (char const* sni =
                    SSL_get_servername(tls_->native_handle(), TLSEXT_NAMETYPE_host_name))
                sni_ = sni;
        return !ec;
    }

    http::request<http::string_body> read_request()
    {
        http::request<http::string_body> req;
        with([&](auto& s) { http::read(s, buffer_, req); });
        return req;
    }

    /// Writes @p bytes in pieces of @p piece bytes (0: at once).
    void send(std::string_view bytes, std::size_t piece = 0)
    {
        if (piece == 0)
            piece = bytes.size();
        for (std::size_t i = 0; i < bytes.size(); i += piece)
            with([&](auto& s) { net::write(s, net::buffer(bytes.substr(i, piece))); });
    }

    void head(int status, std::string_view type = "text/event-stream", std::string_view extra = {},
              bool chunked = true)
    {
        std::string h = "HTTP/1.1 " + std::to_string(status) +
                        " X\r\nContent-Type: " + std::string(type) + "\r\n" + std::string(extra) +
                        (chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n") +
                        "\r\n";
        send(h);
    }

    /// The body as HTTP chunks cut at @p cuts (byte offsets), each chunk's
    /// bytes written in TCP pieces of @p piece.
    void chunks(std::string_view body, std::vector<std::size_t> cuts, std::size_t piece = 0)
    {
        cuts.push_back(body.size());
        std::size_t at = 0;
        for (auto c : cuts)
        {
            if (c <= at)
                continue;
            std::ostringstream size;
            size << std::hex << (c - at);
            send(size.str() + "\r\n" + std::string(body.substr(at, c - at)) + "\r\n", piece);
            at = c;
        }
    }
    void end_chunks() { send("0\r\n\r\n"); }

    void response(int status, std::string_view body, std::string_view extra = {})
    {
        send("HTTP/1.1 " + std::to_string(status) +
             " X\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n" + std::string(extra) + "\r\n" +
             std::string(body));
    }

    /// Waits for the client to close (EOF or reset); the time it saw that.
    std::optional<clock_type::time_point> wait_closed(std::chrono::milliseconds limit)
    {
        auto const deadline = clock_type::now() + limit;
        char b[4096];
        for (;;)
        {
            auto const left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
            if (left.count() <= 0)
                return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                return std::nullopt;
            beast::error_code ec;
            with([&](auto& s) { s.read_some(net::buffer(b), ec); });
            if (ec)
                return clock_type::now();
        }
    }

    /// Closes with RST instead of FIN.
    void reset()
    {
        auto& s = tls_ ? tls_->next_layer() : *plain_;
        s.set_option(net::socket_base::linger(true, 0));
        s.close();
    }

    std::string const& sni() const { return sni_; }

private:
    template <class F> void with(F&& f)
    {
        if (tls_)
            f(*tls_);
        else
            f(*plain_);
    }

    int fd_;
    std::optional<tcp::socket> plain_;
    std::optional<ssl::stream<tcp::socket>> tls_;
    beast::flat_buffer buffer_;
    std::string sni_;
};

// Accepts @p connections connections and runs @p script on each, in order.
class mock_upstream
{
public:
    using script = std::function<void(connection&, int index)>;

    explicit mock_upstream(script s, int connections = 1, ssl::context* tls = nullptr)
        : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
          script_(std::move(s))
    {
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread(
            [this, connections, tls]
            {
                for (int i = 0; i < connections; ++i)
                {
                    tcp::socket sock(ioc_);
                    beast::error_code ec;
                    acceptor_.accept(sock, ec);
                    if (ec || stopping_)
                        return;
                    try
                    {
                        connection c(std::move(sock), tls);
                        if (!c.handshake())
                        {
                            ++failed_handshakes_;
                            continue;
                        }
                        script_(c, i);
                        std::lock_guard lock(mutex_);
                        sni_ = c.sni();
                    }
                    catch (std::exception const& e)
                    {
                        std::lock_guard lock(mutex_);
                        errors_.push_back(e.what());
                    }
                }
            });
    }

    ~mock_upstream()
    {
        // Unblock an accept the client never reached.
        stopping_ = true;
        net::io_context ioc;
        tcp::socket s(ioc);
        beast::error_code ec;
        s.connect(acceptor_.local_endpoint(), ec);
        thread_.join();
    }

    void join()
    {
        if (thread_.joinable())
            thread_.join();
        thread_ = std::thread([] {});
    }

    std::string url(std::string_view scheme = "http", std::string_view host = "127.0.0.1") const
    {
        return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(port_);
    }
    std::uint16_t port() const { return port_; }
    std::string sni()
    {
        std::lock_guard lock(mutex_);
        return sni_;
    }
    int failed_handshakes() const { return failed_handshakes_; }

    // Filled in by scripts.
    std::mutex mutex_;
    std::vector<http::request<http::string_body>> requests;
    std::optional<clock_type::time_point> closed_at;
    std::vector<std::string> errors_;

private:
    net::io_context ioc_;
    tcp::acceptor acceptor_;
    script script_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> failed_handshakes_{0};
    std::string sni_;
};

std::string sse(std::string_view data)
{
    return "data: " + std::string(data) + "\n\n";
}

std::string content(std::string_view text)
{
    return sse(R"({"choices":[{"index":0,"delta":{"content":)" + core::json_string(text) + "}}]}");
}

std::string const finish_stop =
    sse(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})");
std::string const usage =
    sse(R"({"choices":[],"usage":{"prompt_tokens":21,"completion_tokens":9}})");
std::string const done = "data: [DONE]\r\n\r\n";

std::string const answer = "Bonjour, café naïve 日本語 🚀 👍🏽 𝄞 done.";

std::string answer_stream()
{
    // One token per chunk, like a real model: whole words, emoji alone.
    std::string body = ": OPENROUTER PROCESSING\n\n";
    for (auto tok :
         {"Bonjour", ",", " café", " naïve", " 日本語", " 🚀", " 👍🏽", " 𝄞", " done", "."})
        body += content(tok);
    return body + finish_stop + usage + done;
}

// Cut points inside multi-byte sequences and inside `data:` lines.
std::vector<std::size_t> adversarial_cuts(std::string const& body)
{
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < body.size(); ++i)
    {
        auto const c = static_cast<unsigned char>(body[i]);
        if ((c & 0xC0) == 0x80 || body.compare(i - 1, 2, "da") == 0 ||
            body.compare(i - 1, 2, "a:") == 0 || body[i] == '\n')
            cuts.push_back(i);
    }
    return cuts;
}

struct client
{
    net::io_context ioc;
    std::unique_ptr<provider> model;
    std::shared_ptr<test::recording_sink> sink = std::make_shared<test::recording_sink>();
    std::shared_ptr<provider_stream> stream;

    explicit client(openai_options o) : model(make_openai_provider(o)) {}

    /// Runs one step to its end (or @p limit).
    void run(std::string user = "hello", std::chrono::milliseconds limit = 5s)
    {
        provider_request r;
        r.messages.push_back({"user", std::move(user)});
        stream = model->start(net::make_strand(ioc), std::move(r), sink);
        ioc.run_for(limit);
    }
};

/// Runs one step against @p up and waits for the mock to finish its script.
std::shared_ptr<test::recording_sink> run_step(mock_upstream& up, openai_options const& o)
{
    client cl(o);
    cl.run();
    up.join();
    return cl.sink;
}

openai_options options(std::string url)
{
    openai_options o;
    o.base_url = std::move(url);
    o.api_key = "sk-test-key-0123";
    o.model = "gpt-4o-mini";
    o.request_timeout = 2s; // the timeout tests lower it
    o.connect_timeout = 2s;
    o.tools = tool_registry::with_builtins().definitions();
    return o;
}

} // namespace

TEST_CASE("openai: streams text through adversarial chunking", "[streaming][openai][upstream]")
{
    auto const body = answer_stream();
    SECTION("HTTP chunks split inside UTF-8 sequences and data: lines, written byte by byte")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                auto req = c.read_request();
                {
                    std::lock_guard lock(up.mutex_);
                    up.requests.push_back(req);
                }
                c.head(200);
                c.chunks(body, adversarial_cuts(body), 1);
                c.end_chunks();
            });
        auto const sink = run_step(up, options(up.url() + "/"));
        CHECK(sink->error.empty());
        CHECK(sink->text() == answer);
        for (auto const& t : sink->texts)
            CHECK(core::is_valid_utf8(t));
        CHECK(sink->finish_reason == "stop");
        CHECK(sink->usage.input_tokens == 21);
        CHECK(sink->usage.output_tokens == 9);
        CHECK(sink->calls_after_end == 0);

        REQUIRE(up.requests.size() == 1);
        auto const& req = up.requests[0];
        CHECK(req.method() == http::verb::post);
        CHECK(req.target() == "/v1/chat/completions");
        CHECK(req[http::field::authorization] == "Bearer sk-test-key-0123");
        CHECK(req[http::field::accept] == "text/event-stream");
        CHECK(req[http::field::host] == "127.0.0.1:" + std::to_string(up.port()));
        auto b = json::parse(req.body()).as_object();
        CHECK(b.at("stream") == true);
        CHECK(b.at("stream_options").at("include_usage") == true);
        CHECK(b.at("model") == "gpt-4o-mini");
        CHECK(b.at("messages").at(0).at("content") == "hello");
        CHECK(b.at("tools").as_array().size() == 2);
    }
    SECTION("a close-delimited body in 1-byte TCP writes, base URL ending in /v1")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                auto req = c.read_request();
                {
                    std::lock_guard lock(up.mutex_);
                    up.requests.push_back(req);
                }
                c.head(200, "text/event-stream; charset=utf-8", {}, false);
                c.send(body, 1);
            });
        auto o = options(up.url() + "/v1");
        o.api_key.reset();
        auto const sink = run_step(up, o);
        CHECK(sink->error.empty());
        CHECK(sink->text() == answer);
        for (auto const& t : sink->texts)
            CHECK(core::is_valid_utf8(t));
        REQUIRE(up.requests.size() == 1);
        CHECK(up.requests[0].target() == "/v1/chat/completions");
        CHECK(up.requests[0].count(http::field::authorization) == 0);
    }
}

TEST_CASE("openai: two parallel tool calls from streamed deltas", "[streaming][openai][upstream]")
{
    auto call = [](int index, std::string_view fields)
    {
        return sse(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":)" +
                   std::to_string(index) + "," + std::string(fields) + "}]}}]}");
    };
    std::string body =
        content("Let me check. ") +
        call(0,
             R"("id":"call_1","type":"function","function":{"name":"calculator","arguments":""})") +
        call(0, R"("function":{"arguments":"{\"expression\":"})") +
        call(1,
             R"("id":"call_2","type":"function","function":{"name":"datetime","arguments":""})") +
        call(0, R"("function":{"arguments":" \"2^10\"}"})") +
        call(1, R"("function":{"arguments":"{\"timezone\":\"Europe/Paris\"}"})") +
        sse(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})") + usage + done;
    mock_upstream up(
        [&](connection& c, int)
        {
            c.read_request();
            c.head(200);
            c.chunks(body, {7, 100, 101, 250, 333});
            c.end_chunks();
        });
    auto const sink = run_step(up, options(up.url()));
    CHECK(sink->log == std::vector<std::string>{
                           "text:Let me check. ",
                           "start:call_1:calculator",
                           "delta:call_1:{\"expression\":",
                           "start:call_2:datetime",
                           "delta:call_1: \"2^10\"}",
                           "delta:call_2:{\"timezone\":\"Europe/Paris\"}",
                           "call:call_1:calculator:{\"expression\":\"2^10\"}",
                           "call:call_2:datetime:{\"timezone\":\"Europe/Paris\"}",
                           "finish:tool-calls",
                       });
}

TEST_CASE("openai: HTTP error statuses become user-facing errors", "[streaming][openai][upstream]")
{
    struct row
    {
        int status;
        std::string body;
        std::string extra;
        std::string expect;
    };
    for (
        auto const& r : std::vector<row>{
            {401,
             R"({"error":{"message":"Incorrect API key provided: sk-test-key-0123","code":"invalid_api_key"}})",
             "", "upstream rejected the API key (HTTP 401)"},
            {429, R"({"error":{"message":"Rate limit reached","type":"requests"}})",
             "Retry-After: 7\r\n",
             "upstream rate limit reached (HTTP 429), retry after 7 s: Rate limit reached"},
            {500,
             R"({"error":{"message":"The server had an error while processing your request."}})",
             "",
             "upstream error (HTTP 500): The server had an error while processing your request."},
        })
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                c.read_request();
                c.response(r.status, r.body, r.extra);
                c.wait_closed(1s);
            });
        auto const sink = run_step(up, options(up.url()));
        INFO(r.status);
        CHECK_THAT(sink->error, Contains(r.expect));
        CHECK_THAT(sink->error, !Contains("sk-test-key"));
        CHECK(sink->log.size() == 1);
    }
}

TEST_CASE("openai: a silent upstream times out and is closed", "[streaming][openai][upstream]")
{
    SECTION("before the headers")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                c.read_request();
                auto closed = c.wait_closed(3s);
                std::lock_guard lock(up.mutex_);
                up.closed_at = closed;
            });
        auto o = options(up.url());
        o.request_timeout = 300ms;
        auto const t0 = clock_type::now();
        auto const sink = run_step(up, o);
        CHECK_THAT(sink->error, Contains("timed out"));
        CHECK(up.closed_at.has_value());
        CHECK(clock_type::now() - t0 < 2s);
    }
    SECTION("in the middle of the stream: partial text first")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                c.read_request();
                c.head(200);
                c.chunks(content("partial"), {});
                auto closed = c.wait_closed(3s);
                std::lock_guard lock(up.mutex_);
                up.closed_at = closed;
            });
        auto o = options(up.url());
        o.request_timeout = 300ms;
        auto const sink = run_step(up, o);
        CHECK(sink->text() == "partial");
        CHECK_THAT(sink->error, Contains("nothing received for 300 ms"));
        CHECK(up.closed_at.has_value());
    }
}

TEST_CASE("openai: a reset or a cut stream is an error after the partial text",
          "[streaming][openai][upstream]")
{
    SECTION("reset")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                c.read_request();
                c.head(200);
                c.chunks(content("half an ans"), {});
                std::this_thread::sleep_for(50ms);
                c.reset();
            });
        auto const sink = run_step(up, options(up.url()));
        CHECK(sink->text() == "half an ans");
        CHECK_THAT(sink->error, Contains("upstream"));
        CHECK(sink->finish_reason.empty());
    }
    SECTION("EOF inside a chunk")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                c.read_request();
                c.head(200);
                c.send("40\r\n" + content("x").substr(0, 20));
            });
        auto const sink = run_step(up, options(up.url()));
        CHECK_THAT(sink->error, Contains("closed the connection in the middle of the answer"));
    }
    SECTION("a complete body without [DONE] or finish_reason")
    {
        mock_upstream up(
            [&](connection& c, int)
            {
                c.read_request();
                c.head(200);
                c.chunks(content("abc"), {});
                c.end_chunks();
            });
        auto const sink = run_step(up, options(up.url()));
        CHECK(sink->text() == "abc");
        CHECK_THAT(sink->error, Contains("before the answer was finished"));
    }
}

TEST_CASE("openai: malformed SSE ends the step and the connection", "[streaming][openai][upstream]")
{
    mock_upstream up(
        [&](connection& c, int)
        {
            c.read_request();
            c.head(200);
            c.chunks(content("ok ") + "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}\n\n" +
                         content("never"),
                     {});
            auto closed = c.wait_closed(2s);
            std::lock_guard lock(up.mutex_);
            up.closed_at = closed;
        });
    auto const sink = run_step(up, options(up.url()));
    CHECK(sink->text() == "ok ");
    CHECK_THAT(sink->error, Contains("malformed JSON"));
    CHECK(up.closed_at.has_value());
}

TEST_CASE("openai: cancel closes the upstream connection within milliseconds",
          "[streaming][openai][upstream]")
{
    std::optional<clock_type::time_point> cancelled_at;
    mock_upstream up(
        [&](connection& c, int)
        {
            c.read_request();
            c.head(200);
            c.chunks(content("first"), {});
            auto closed = c.wait_closed(3s);
            std::lock_guard lock(up.mutex_);
            up.closed_at = closed;
        });
    client cl(options(up.url()));
    auto const& sink = cl.sink;
    sink->after_text = [&]
    {
        cancelled_at = clock_type::now();
        cl.stream->cancel();
    };
    auto const t0 = clock_type::now();
    cl.run();
    up.join();
    CHECK(sink->log == std::vector<std::string>{"text:first"});
    REQUIRE(cancelled_at);
    REQUIRE(up.closed_at);
    auto const lag =
        std::chrono::duration_cast<std::chrono::milliseconds>(*up.closed_at - *cancelled_at);
    INFO("upstream saw the close " << lag.count() << " ms after cancel");
    CHECK(lag < 250ms); // typically 0-1 ms; the margin is for loaded CI machines
    CHECK(clock_type::now() - t0 < 1500ms); // not the request timeout
}

TEST_CASE("openai: cancel before the connection is made", "[streaming][openai][upstream]")
{
    mock_upstream up([](connection& c, int) { c.wait_closed(1s); });
    client cl(options(up.url()));
    auto const& sink = cl.sink;
    provider_request r;
    r.messages.push_back({"user", "x"});
    auto strand = net::make_strand(cl.ioc);
    cl.stream = cl.model->start(strand, r, cl.sink);
    net::post(strand, [&] { cl.stream->cancel(); });
    cl.ioc.run_for(2s);
    CHECK(sink->log.empty());
}

TEST_CASE("openai: connection failures", "[streaming][openai][upstream]")
{
    SECTION("refused")
    {
        std::uint16_t port = 0;
        {
            net::io_context ioc;
            tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
            port = a.local_endpoint().port();
        }
        client cl(options("http://127.0.0.1:" + std::to_string(port)));
        auto const& sink = cl.sink;
        cl.run();
        CHECK_THAT(sink->error, Contains("cannot connect to the upstream"));
    }
    SECTION("a TLS handshake that never completes hits the connect timeout")
    {
        // A plain TCP server that never answers the ClientHello.
        mock_upstream up(
            [&](connection& c, int)
            {
                auto closed = c.wait_closed(3s);
                std::lock_guard lock(up.mutex_);
                up.closed_at = closed;
            });
        auto o = options(up.url("https"));
        o.connect_timeout = 300ms;
        auto const t0 = clock_type::now();
        auto const sink = run_step(up, o);
        CHECK(sink->error == "upstream connect timed out after 300 ms");
        CHECK(up.closed_at.has_value());
        CHECK(clock_type::now() - t0 < 2s);
    }
    SECTION("bad URLs are refused at construction")
    {
        CHECK_THROWS_AS(make_openai_provider(options("ftp://x")), std::invalid_argument);
        CHECK_THROWS_AS(make_openai_provider(options("not a url")), std::invalid_argument);
        CHECK_THROWS_AS(make_openai_provider(options("http://u:p@host/")), std::invalid_argument);
    }
}

//------------------------------------------------------------------------------

namespace
{

// A self-signed certificate for `localhost` (P-256), made for the test.
struct test_certificate
{
    std::string cert_pem;
    std::string key_pem;

    test_certificate()
    {
        EVP_PKEY* key = EVP_EC_gen("P-256");
        X509* x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        auto* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<unsigned char const*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
        for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost"},
                                  std::pair{NID_basic_constraints, "critical,CA:TRUE"}})
        {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
            X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
        X509_sign(x, key, EVP_sha256());
        cert_pem = to_pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
        key_pem =
            to_pem([&](BIO* b)
                   { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
        X509_free(x);
        EVP_PKEY_free(key);
    }

    template <class F> static std::string to_pem(F&& write)
    {
        BIO* b = BIO_new(BIO_s_mem());
        write(b);
        char* data = nullptr;
        auto const n = BIO_get_mem_data(b, &data);
        std::string out(data, static_cast<std::size_t>(n));
        BIO_free(b);
        return out;
    }
};

} // namespace

TEST_CASE("openai: TLS with SNI, chain and host name verification",
          "[streaming][openai][upstream][tls]")
{
    test_certificate cert;
    ssl::context server_tls(ssl::context::tls_server);
    server_tls.use_certificate_chain(net::buffer(cert.cert_pem));
    server_tls.use_private_key(net::buffer(cert.key_pem), ssl::context::pem);
    test::temp_dir dir;
    auto const ca_file = dir.file("ca.pem");
    std::ofstream(ca_file) << cert.cert_pem;

    auto serve = [](connection& c, int)
    {
        c.read_request();
        c.head(200);
        c.chunks(content("secure") + finish_stop + done, {3});
        c.end_chunks();
    };

    SECTION("trusted through ca_file: SNI sent, stream decoded")
    {
        mock_upstream up(serve, 1, &server_tls);
        auto o = options(up.url("https", "localhost"));
        o.ca_file = ca_file;
        auto const sink = run_step(up, o);
        CHECK(sink->error.empty());
        CHECK(sink->text() == "secure");
        CHECK(up.sni() == "localhost");
    }
    SECTION("untrusted certificate: verification is on by default")
    {
        mock_upstream up(serve, 1, &server_tls);
        auto const sink = run_step(up, options(up.url("https", "localhost")));
        CHECK_THAT(sink->error, Contains("TLS handshake with the upstream failed"));
        CHECK_THAT(sink->error, Contains("certificate verify failed"));
    }
    SECTION("trusted chain but the wrong host name")
    {
        mock_upstream up(serve, 1, &server_tls);
        auto o = options(up.url("https", "127.0.0.1"));
        o.ca_file = ca_file;
        auto const sink = run_step(up, o);
        CHECK_THAT(sink->error, Contains("certificate verify failed"));
    }
    SECTION("verification off (lab setups only)")
    {
        mock_upstream up(serve, 1, &server_tls);
        auto o = options(up.url("https", "127.0.0.1"));
        o.tls_verify = false;
        auto const sink = run_step(up, o);
        CHECK(sink->text() == "secure");
        CHECK(up.sni().empty()); // never SNI for an IP literal
    }
}
