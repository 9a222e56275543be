// Link previews: the SSRF address rule on a table (classified, never
// contacted), the HTML meta scanner on a table, and the fetcher against a
// tiny HTTP server on 127.0.0.1. No test sends a packet anywhere else.
#include "chatstream/streaming/page_fetcher.hpp"

#include "chatstream/core/utf16.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <poll.h>

#include <atomic>
#include <mutex>
#include <thread>

using namespace chatstream;
using namespace chatstream::streaming;
using Catch::Matchers::StartsWith;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("is_forbidden_address: private, local and special ranges", "[streaming][enrich]")
{
    struct row
    {
        char const* address;
        bool forbidden;
    };
    // clang-format off
    std::vector<row> const table{
        {"127.0.0.1", true}, {"127.255.255.254", true}, {"0.0.0.0", true}, {"0.1.2.3", true},
        {"10.0.0.1", true}, {"10.255.255.255", true}, {"9.255.255.255", false}, {"11.0.0.0", false},
        {"172.16.0.0", true}, {"172.31.255.255", true},
        {"172.15.255.255", false}, {"172.32.0.0", false},
        {"192.168.0.1", true}, {"192.168.255.255", true},
        {"192.167.255.255", false}, {"192.169.0.0", false},
        {"169.254.169.254", true}, {"169.254.0.1", true},
        {"169.253.255.255", false}, {"169.255.0.0", false},
        {"100.64.0.1", true}, {"100.127.255.255", true},
        {"100.63.255.255", false}, {"100.128.0.0", false},
        {"192.0.0.8", true}, {"192.0.2.1", true}, {"198.51.100.7", true}, {"203.0.113.9", true},
        {"198.18.0.1", true}, {"198.19.255.255", true}, {"198.20.0.0", false},
        {"224.0.0.1", true}, {"239.255.255.250", true}, {"240.0.0.1", true},
        {"255.255.255.255", true}, {"223.255.255.255", false},
        {"8.8.8.8", false}, {"1.1.1.1", false}, {"126.255.255.255", false}, {"128.0.0.0", false},
        // IPv6
        {"::", true}, {"::1", true}, {"fc00::1", true}, {"fd12:3456::1", true},
        {"fe80::1", true}, {"febf::1", true}, {"fec0::1", true}, {"ff02::1", true},
        {"100::1", true}, {"2001:db8::1", true}, {"2001::1", true}, {"2001:2::1", true},
        {"::ffff:127.0.0.1", true}, {"::ffff:10.0.0.1", true}, {"::ffff:169.254.169.254", true},
        {"::ffff:8.8.8.8", false},
        {"::127.0.0.1", true}, {"::8.8.8.8", true},  // IPv4-compatible: deprecated, refused
        {"64:ff9b::7f00:1", true}, {"64:ff9b::a00:1", true}, {"64:ff9b::808:808", false},
        {"64:ff9b:1::1", true},
        {"2002:7f00:1::1", true}, {"2002:c0a8:101::1", true}, {"2002:808:808::1", false},
        {"2001:4860::8888", false}, {"2001:4860:4860::8888", false}, {"2606:4700::1111", false},
    };
    // clang-format on
    for (auto const& r : table)
    {
        INFO(r.address);
        CHECK(is_forbidden_address(net::ip::make_address(r.address)) == r.forbidden);
    }
}

//------------------------------------------------------------------------------

namespace
{

struct scan_case
{
    char const* name;
    std::string html;
    std::optional<std::string> title, description, image, favicon;
    std::string page = "https://example.com/blog/post.html?x=1";
};

std::optional<std::string> const none;
std::string const default_icon = "https://example.com/favicon.ico";

} // namespace

TEST_CASE("scan_html_meta: tags, fallbacks, entities, cuts, URLs", "[streaming][enrich]")
{
    std::string const long_text(5000, 'a');
    std::string euros;
    for (int i = 0; i < 500; ++i)
        euros += "€"; // 3 bytes each: the cap falls inside one
    std::string const long_path(3000, 'p');

    std::vector<scan_case> const table{
        {"og tags",
         R"(<html><head><meta property="og:title" content="OG Title">)"
         R"(<meta property="og:description" content="OG desc">)"
         R"(<meta property="og:image" content="https://cdn.example.com/i.png">)"
         R"(<title>Doc</title><link rel="icon" href="/fav.png"></head>)",
         "OG Title", "OG desc", "https://cdn.example.com/i.png", "https://example.com/fav.png"},
        {"title and description fallbacks",
         "<title> Doc \n title </title><meta name=\"description\" content=\"plain desc\">",
         "Doc title", "plain desc", none, default_icon},
        {"twitter fallbacks, relative image",
         R"(<meta name="twitter:title" content="TW"><meta name="twitter:description" content="TWD">)"
         R"(<meta name="twitter:image:src" content="img/t.png"><title>Doc</title>)",
         "TW", "TWD", "https://example.com/blog/img/t.png", default_icon},
        {"og wins over earlier fallbacks; attribute order",
         R"(<title>Doc</title><meta name=description content=d><meta content="OG" property="og:title">)",
         "OG", "d", none, default_icon},
        {"single quotes, unquoted values, upper case, spaces around =",
         R"(<META CONTENT='single &amp; quoted' PROPERTY=og:title>)"
         R"(<meta property = "og:description" content = unquoted-value />)",
         "single & quoted", "unquoted-value", none, default_icon},
        {"entities",
         "<title>A &amp; B &lt;C&gt; &quot;D&quot; &#39;E&#39; &#233;t&#xE9; &#x1F680; "
         "&nbsp;&hellip; &bogus; &#0; &amp</title>",
         "A & B <C> \"D\" 'E' été 🚀 … &bogus; \xEF\xBF\xBD &amp", none, none, default_icon},
        {"whitespace collapsed",
         "<meta property=\"og:description\" content=\"  line one\n\n\t line   two  \">", none,
         "line one line two", none, default_icon},
        {"cut inside a quoted value", R"(<title>T</title><meta property="og:title" content="Cut)",
         "T", none, none, default_icon},
        {"cut inside an unquoted value", R"(<title>T</title><meta property=og:title content=Cut)",
         "T", none, none, default_icon},
        {"cut inside the title", R"(<meta name="description" content="d"><title>Never clo)", none,
         "d", none, default_icon},
        {"markup inside a value cut at the end is not markup",
         R"(<meta name="description" content="d"><meta property="og:title" content="cut <title>No</title>)",
         none, "d", none, default_icon},
        {"cut inside a tag name", R"(<title>T</title><me)", "T", none, none, default_icon},
        {"relative URLs resolved against the page",
         R"(<meta property="og:image" content="../img/a b.png"><link rel="icon" href="fav.ico?v=1&amp;w=2">)",
         none, none, "https://example.com/img/a%20b.png",
         "https://example.com/blog/fav.ico?v=1&w=2"},
        {"protocol-relative image",
         R"(<meta property="og:image" content="  //cdn.example.net/b.png  ">)", none, none,
         "https://cdn.example.net/b.png", default_icon},
        {"base href moves relative URLs, not the default favicon",
         R"(<base href="https://static.example.org/assets/"><meta property="og:image" content="x.png">)",
         none, none, "https://static.example.org/assets/x.png", default_icon},
        {"non-web schemes dropped, the next candidate used",
         R"x(<meta property="og:image" content="javascript:alert(1)">)x"
         R"(<meta name="twitter:image" content="/t.png"><link rel="icon" href="ftp://x/y.ico">)",
         none, none, "https://example.com/t.png", default_icon},
        {"data: image dropped", R"(<meta property="og:image" content="data:image/png;base64,AAA">)",
         none, none, none, default_icon},
        {"credentials removed from URLs",
         R"(<meta property="og:image" content="https://user:pw@cdn.example.com/i.png">)", none,
         none, "https://cdn.example.com/i.png", default_icon},
        {"scheme case normalized",
         R"(<meta property="og:image" content="HTTPS://CDN.example.com/i.png">)", none, none,
         "https://CDN.example.com/i.png", default_icon},
        {"icon preferred over apple-touch-icon, rel tokens case-insensitive",
         R"(<link rel="apple-touch-icon" href="/apple.png"><link REL="Shortcut Icon" href="/short.ico">)",
         none, none, none, "https://example.com/short.ico"},
        {"apple-touch-icon alone", R"(<link href="/apple.png" rel=apple-touch-icon>)", none, none,
         none, "https://example.com/apple.png"},
        {"oversized title capped", "<title>" + long_text + "</title>", long_text.substr(0, 1024),
         none, none, default_icon},
        {"cap on a code point boundary", "<meta property=og:title content=\"" + euros + "\">",
         euros.substr(0, 1023), none, none, default_icon},
        {"oversized URL dropped", "<meta property=og:image content=\"/" + long_path + "\">", none,
         none, none, default_icon},
        {"script, comment and svg contents are not markup",
         R"(<script>var s = "<meta property='og:title' content='evil'>";</script>)"
         R"(<!-- <title>commented</title> --><svg><title>icon</title></svg><title>Real</title>)",
         "Real", none, none, default_icon},
        {"invalid UTF-8 replaced, controls removed",
         "<title>caf\xE9 a\x01"
         "b</title>",
         "caf\xEF\xBF\xBD ab", none, none, default_icon},
        {"the first of repeated tags wins; an empty one falls back",
         R"(<meta property="og:title" content=""><title>First</title><title>Second</title>)",
         "First", none, none, default_icon},
        {"no tags", "just text < not a tag & no markup", none, none, none, default_icon},
        {"empty input", "", none, none, none, default_icon},
        {"a page URL that is not http(s): nothing relative resolves",
         R"(<meta property="og:image" content="/i.png"><title>T</title>)", "T", none, none, none,
         "file:///tmp/x.html"},
    };
    for (auto const& c : table)
    {
        INFO(c.name);
        auto const m = scan_html_meta(c.html, c.page);
        CHECK(m.title == c.title);
        CHECK(m.description == c.description);
        CHECK(m.image == c.image);
        CHECK(m.favicon == c.favicon);
        for (auto const* f : {&m.title, &m.description})
            if (*f)
                CHECK((core::is_valid_utf8(**f) && (*f)->size() <= max_meta_text));
    }
}

//------------------------------------------------------------------------------

namespace
{

using request = http::request<http::string_body>;

// A tiny HTTP/1.1 server on 127.0.0.1:0 with a thread per connection; each
// request goes to the handler, which writes whatever it likes.
class page_server
{
public:
    using handler = std::function<void(request const&, tcp::socket&)>;

    explicit page_server(handler h)
        : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
          handler_(std::move(h)), port_(acceptor_.local_endpoint().port())
    {
        accept_thread_ = std::thread([this] { accept_loop(); });
    }

    ~page_server()
    {
        stopping_ = true;
        net::io_context ioc;
        tcp::socket s(ioc);
        beast::error_code ec;
        s.connect(acceptor_.local_endpoint(), ec); // unblocks accept
        accept_thread_.join();
        std::lock_guard lock(mutex_);
        for (auto& t : connections_)
            t.join();
    }

    std::string url(std::string_view path = "/") const
    {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }

    std::vector<request> requests()
    {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    int max_concurrent() const { return max_concurrent_; }

private:
    void accept_loop()
    {
        for (;;)
        {
            tcp::socket sock(ioc_);
            beast::error_code ec;
            acceptor_.accept(sock, ec);
            if (ec || stopping_)
                return;
            std::lock_guard lock(mutex_);
            connections_.emplace_back([this, s = std::move(sock)]() mutable { serve(s); });
        }
    }

    void serve(tcp::socket& s)
    {
        beast::flat_buffer buffer;
        request req;
        beast::error_code ec;
        http::read(s, buffer, req, ec);
        if (ec)
            return;
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(req);
        }
        auto const now = ++concurrent_;
        for (int seen = max_concurrent_;
             now > seen && !max_concurrent_.compare_exchange_weak(seen, now);)
        {
        }
        handler_(req, s);
        --concurrent_;
        s.shutdown(tcp::socket::shutdown_both, ec);
        s.close(ec);
    }

    net::io_context ioc_;
    tcp::acceptor acceptor_;
    handler handler_;
    std::uint16_t port_;
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::vector<std::thread> connections_;
    std::vector<request> requests_;
    std::atomic<int> concurrent_{0};
    std::atomic<int> max_concurrent_{0};
};

void respond(tcp::socket& s, int status, std::string_view type, std::string_view body,
             std::string_view extra = {})
{
    std::string out = "HTTP/1.1 " + std::to_string(status) +
                      " X\r\nContent-Type: " + std::string(type) +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n" + std::string(extra) + "\r\n" + std::string(body);
    beast::error_code ec;
    net::write(s, net::buffer(out), ec);
}

/// Blocks until the peer closes (or @p limit); the time it took.
std::chrono::milliseconds wait_closed(tcp::socket& s, std::chrono::milliseconds limit = 5s)
{
    auto const start = clock_type::now();
    char b[512];
    while (clock_type::now() - start < limit)
    {
        pollfd p{s.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        beast::error_code ec;
        s.read_some(net::buffer(b), ec);
        if (ec)
            break;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
}

std::string const og_page = R"(<!doctype html><html><head>
<meta charset="utf-8">
<title>Fallback</title>
<meta property="og:title" content="Local &amp; Loopback">
<meta property="og:description" content="A page served on 127.0.0.1">
<meta property="og:image" content="/images/card.png">
<link rel="icon" href="/static/icon.svg">
</head><body>hello</body></html>)";

fetch_options local_options()
{
    fetch_options o;
    o.allow_private = true; // the server is on loopback
    o.timeout = 3s;
    return o;
}

// Runs an io_context on the test thread until every fetch has answered.
struct harness
{
    net::io_context ioc;
    page_fetcher fetcher;
    std::vector<fetch_result> results;
    int calls = 0;
    int calls_off_ioc_thread = 0;

    explicit harness(fetch_options o) : fetcher(ioc, std::move(o)) {}

    void start(std::string url)
    {
        fetcher.fetch(std::move(url),
                      [this](fetch_result r)
                      {
                          ++calls;
                          if (!ioc.get_executor().running_in_this_thread())
                              ++calls_off_ioc_thread;
                          results.push_back(std::move(r));
                      });
    }

    void run_until(std::size_t answers, std::chrono::milliseconds limit = 10s)
    {
        auto const deadline = clock_type::now() + limit;
        while (results.size() < answers && clock_type::now() < deadline)
            if (ioc.run_one_for(10ms) == 0 && ioc.stopped())
                ioc.restart();
        ioc.restart();
        ioc.run_for(20ms); // a second call would show up here
    }

    fetch_result get(std::string url)
    {
        start(std::move(url));
        run_until(1);
        REQUIRE(results.size() == 1);
        CHECK(calls == 1);
        CHECK(calls_off_ioc_thread == 0);
        return results.back();
    }
};

} // namespace

TEST_CASE("page_fetcher: loopback is refused by default, after resolution",
          "[streaming][enrich][fetch]")
{
    page_server server([](request const&, tcp::socket& s)
                       { respond(s, 200, "text/html", og_page); });
    auto const port = server.url("").substr(std::string("http://127.0.0.1").size());
    fetch_options o;
    o.timeout = 3s;
    SECTION("an IPv4 literal")
    {
        harness h(o);
        auto const r = h.get(server.url());
        CHECK(r.error == "address not allowed: 127.0.0.1");
        CHECK(!r.meta.title);
    }
    SECTION("a name that resolves to loopback")
    {
        harness h(o);
        auto const r = h.get("http://localhost" + port + "/");
        REQUIRE(r.error);
        CHECK_THAT(*r.error, StartsWith("address not allowed: "));
    }
    SECTION("an IPv6 literal")
    {
        harness h(o);
        CHECK(h.get("http://[::1]" + port + "/").error == "address not allowed: ::1");
    }
    CHECK(server.requests().empty()); // nothing was sent
}

TEST_CASE("page_fetcher: a page with OpenGraph tags", "[streaming][enrich][fetch]")
{
    page_server server([](request const&, tcp::socket& s)
                       { respond(s, 200, "text/html; charset=utf-8", og_page); });
    harness h(local_options());
    auto const r = h.get(server.url("/article?id=7#top"));
    CHECK(!r.error);
    CHECK(r.final_url == server.url("/article?id=7#top"));
    CHECK(r.meta.title == "Local & Loopback");
    CHECK(r.meta.description == "A page served on 127.0.0.1");
    CHECK(r.meta.image == server.url("/images/card.png"));
    CHECK(r.meta.favicon == server.url("/static/icon.svg"));
    auto const requests = server.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method() == http::verb::get);
    CHECK(requests[0].target() == "/article?id=7");
    CHECK(requests[0][http::field::host] == server.url("").substr(7));
    CHECK(requests[0][http::field::user_agent] == "chatstream/1 (+link preview)");
}

TEST_CASE("page_fetcher: redirects", "[streaming][enrich][fetch]")
{
    std::string base;
    page_server server(
        [&](request const& req, tcp::socket& s)
        {
            auto const t = req.target();
            if (t == "/start")
                respond(s, 302, "text/html", "", "Location: /middle\r\n");
            else if (t == "/middle")
                respond(s, 301, "text/html", "", "Location: " + base + "/page\r\n");
            else if (t == "/page")
                respond(s, 200, "text/html", og_page);
            else if (t == "/loop")
                respond(s, 307, "text/html", "", "Location: /loop\r\n");
            else if (t == "/to-ftp")
                respond(s, 308, "text/html", "", "Location: ftp://127.0.0.1/file\r\n");
            else if (t == "/nowhere")
                respond(s, 303, "text/html", "");
            else
                respond(s, 404, "text/html", "no");
        });
    base = server.url("");
    harness h(local_options());
    SECTION("relative and absolute Location followed")
    {
        auto const r = h.get(server.url("/start"));
        CHECK(!r.error);
        CHECK(r.final_url == server.url("/page"));
        CHECK(r.meta.title == "Local & Loopback");
        CHECK(server.requests().size() == 3);
    }
    SECTION("a loop stops at max_redirects")
    {
        auto const r = h.get(server.url("/loop"));
        CHECK(r.error == "too many redirects (more than 3)");
        CHECK(server.requests().size() == 4); // the first request and 3 redirects
    }
    SECTION("each hop's scheme is checked again")
    {
        auto const r = h.get(server.url("/to-ftp"));
        CHECK(r.error == "unsupported URL scheme: ftp");
        CHECK(r.final_url == "ftp://127.0.0.1/file");
    }
    SECTION("a redirect without Location")
    {
        CHECK(h.get(server.url("/nowhere")).error == "HTTP 303 without a Location");
    }
}

TEST_CASE("page_fetcher: error statuses and other content", "[streaming][enrich][fetch]")
{
    page_server server(
        [](request const& req, tcp::socket& s)
        {
            if (req.target() == "/image")
                respond(s, 200, "image/png", "\x89PNG");
            else if (req.target() == "/xhtml")
                respond(s, 200, "application/xhtml+xml", "<title>X</title>");
            else if (req.target() == "/untyped")
                respond(s, 200, "", "<title>X</title>");
            else
                respond(s, 404, "text/html", "<title>Not Found</title>");
        });
    harness h(local_options());
    SECTION("404")
    {
        auto const r = h.get(server.url("/missing"));
        CHECK(r.error == "HTTP 404");
        CHECK(!r.meta.title);
    }
    SECTION("an image: an error, with the favicon default")
    {
        auto const r = h.get(server.url("/image"));
        CHECK(r.error == "not an HTML page: image/png");
        CHECK(r.meta.favicon == server.url("/favicon.ico"));
    }
    SECTION("XHTML is a page")
    {
        auto const r = h.get(server.url("/xhtml"));
        CHECK(!r.error);
        CHECK(r.meta.title == "X");
    }
    SECTION("no Content-Type")
    {
        CHECK(h.get(server.url("/untyped")).error == "not an HTML page: no Content-Type");
    }
}

TEST_CASE("page_fetcher: a body over max_body is cut and its prefix scanned",
          "[streaming][enrich][fetch]")
{
    constexpr std::size_t total = 8 * 1024 * 1024; // more than loopback socket buffers hold
    std::string const head =
        R"(<html><head><meta property="og:title" content="Big"><!-- )" + std::string(100, 'x');
    std::string const tail = R"( --><meta property="og:description" content="beyond the cap">)";
    std::atomic<bool> write_failed{false};
    std::atomic<std::size_t> written{0};
    auto const send_big = [&](tcp::socket& s, bool chunked)
    {
        std::string h = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n";
        h += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                     : "Content-Length: " + std::to_string(total) + "\r\n\r\n";
        beast::error_code ec;
        net::write(s, net::buffer(h), ec);
        std::string body = head;
        body.resize(total - tail.size(), 'y');
        body += tail;
        for (std::size_t at = 0; at < body.size() && !ec; at += 64 * 1024)
        {
            auto piece = std::string_view(body).substr(at, 64 * 1024);
            std::string framed(piece);
            if (chunked)
            {
                std::ostringstream size;
                size << std::hex << piece.size();
                framed = size.str() + "\r\n" + framed + "\r\n";
            }
            written += net::write(s, net::buffer(framed), ec);
        }
        if (ec)
            write_failed = true;
    };
    auto o = local_options();
    o.max_body = 64 * 1024;
    for (bool const chunked : {false, true})
    {
        INFO((chunked ? "chunked" : "Content-Length"));
        write_failed = false;
        written = 0;
        {
            page_server server([&](request const&, tcp::socket& s) { send_big(s, chunked); });
            harness h(o);
            auto const start = clock_type::now();
            auto const r = h.get(server.url("/big"));
            CHECK(clock_type::now() - start < 1s); // stopped at the cap, not by the deadline
            CHECK(!r.error);
            CHECK(r.meta.title == "Big");
            CHECK(!r.meta.description);
        } // the server's threads are joined here
        // The client closed after its cap: the server could not send it all.
        CHECK(write_failed);
        CHECK(written < total);
    }
}

TEST_CASE("page_fetcher: a server that never answers times out", "[streaming][enrich][fetch]")
{
    std::atomic<long> held_ms{-1};
    page_server server([&](request const&, tcp::socket& s) { held_ms = wait_closed(s).count(); });
    auto o = local_options();
    o.timeout = 300ms;
    harness h(o);
    auto const start = clock_type::now();
    auto const r = h.get(server.url("/slow"));
    auto const took = clock_type::now() - start;
    CHECK(r.error == "timed out after 300 ms");
    CHECK(took >= 280ms);
    CHECK(took < 2s);
    for (int i = 0; i < 100 && held_ms < 0; ++i)
        std::this_thread::sleep_for(10ms);
    CHECK(held_ms >= 0); // the connection was closed, not left open
    CHECK(held_ms < 2000);
}

TEST_CASE("page_fetcher: only http and https", "[streaming][enrich][fetch]")
{
    harness h(local_options());
    CHECK(h.get("ftp://127.0.0.1/file").error == "unsupported URL scheme: ftp");
    h.results.clear();
    h.calls = 0;
    CHECK(h.get("not a url").error == "invalid URL");
    h.results.clear();
    h.calls = 0;
    CHECK(h.get("file:///etc/passwd").error == "unsupported URL scheme: file");
}

TEST_CASE("page_fetcher: https verifies the peer (a plain server fails the handshake)",
          "[streaming][enrich][fetch]")
{
    page_server server([](request const&, tcp::socket& s)
                       { respond(s, 200, "text/html", og_page); });
    harness h(local_options());
    auto url = server.url("/");
    url.replace(0, 4, "https");
    auto const r = h.get(url);
    REQUIRE(r.error);
    CHECK_THAT(*r.error, StartsWith("TLS handshake with 127.0.0.1 failed"));
}

TEST_CASE("page_fetcher: queue bound and concurrency bound", "[streaming][enrich][fetch]")
{
    SECTION("beyond max_in_flight + max_queued: enrichment queue full")
    {
        // Default options: 127.0.0.1:1 is refused by the address rule, so no
        // packet is sent; the point is admission.
        fetch_options o;
        o.max_in_flight = 1;
        o.max_queued = 1;
        harness h(o);
        for (int i = 0; i < 3; ++i)
            h.start("http://127.0.0.1:1/" + std::to_string(i));
        h.run_until(3);
        REQUIRE(h.results.size() == 3);
        CHECK(h.calls == 3);
        int full = 0;
        int refused = 0;
        for (auto const& r : h.results)
        {
            full += r.error == "enrichment queue full";
            refused += r.error == "address not allowed: 127.0.0.1";
        }
        CHECK(full == 1);
        CHECK(refused == 2);
        // The slots are free again.
        h.start("http://127.0.0.1:1/again");
        h.run_until(4);
        REQUIRE(h.results.size() == 4);
        CHECK(h.results.back().error == "address not allowed: 127.0.0.1");
    }
    SECTION("at most max_in_flight connections at once")
    {
        page_server server(
            [](request const&, tcp::socket& s)
            {
                std::this_thread::sleep_for(100ms);
                respond(s, 200, "text/html", og_page);
            });
        auto o = local_options();
        o.max_in_flight = 2;
        harness h(o);
        for (int i = 0; i < 6; ++i)
            h.start(server.url("/" + std::to_string(i)));
        h.run_until(6);
        REQUIRE(h.results.size() == 6);
        for (auto const& r : h.results)
            CHECK(r.meta.title == "Local & Loopback");
        CHECK(server.max_concurrent() == 2);
        CHECK(h.calls_off_ioc_thread == 0);
    }
}

TEST_CASE("page_fetcher: shutdown answers every fetch", "[streaming][enrich][fetch]")
{
    std::atomic<bool> got_request{false};
    page_server server(
        [&](request const&, tcp::socket& s)
        {
            got_request = true;
            wait_closed(s);
        });
    auto o = local_options();
    o.max_in_flight = 1;
    harness h(o);
    h.start(server.url("/hangs"));  // running
    h.start(server.url("/queued")); // waiting for the slot
    for (int i = 0; i < 300 && !got_request; ++i)
        h.ioc.run_for(10ms);
    REQUIRE(got_request);
    auto const start = clock_type::now();
    h.fetcher.shutdown();
    h.start(server.url("/after"));
    h.run_until(3);
    CHECK(clock_type::now() - start < 1s);
    REQUIRE(h.results.size() == 3);
    CHECK(h.calls == 3);
    for (auto const& r : h.results)
        CHECK(r.error == "enrichment shut down");
    CHECK(server.requests().size() == 1);
}
