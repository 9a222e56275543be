// page_fetcher: bounded link-preview fetches. A scheduler admits, queues and
// starts fetches (max_in_flight at once, max_queued waiting); each fetch is a
// job on a strand of its own that walks resolve -> address check -> connect
// -> TLS -> GET -> headers (redirect?) -> body prefix -> scan_html_meta,
// under one deadline.
#include "chatstream/streaming/page_fetcher.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <unordered_map>

namespace chatstream::streaming
{
namespace
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace urls = boost::urls;
using tcp = net::ip::tcp;
using strand_type = net::strand<net::io_context::executor_type>;

constexpr std::string_view shut_down_error = "enrichment shut down";
constexpr std::size_t read_piece = 64 * 1024;
// Headers bigger than Beast's 8 KiB default are common (CSP, cookies).
constexpr std::uint32_t header_limit = 32 * 1024;

void post_result(net::io_context& ioc, std::function<void(fetch_result)> done, fetch_result r)
{
    net::post(ioc, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

fetch_result error_result(std::string_view error, std::string url = {})
{
    fetch_result r;
    r.error = std::string(error);
    r.final_url = std::move(url);
    return r;
}

bool is_redirect(unsigned status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/// The media type of a Content-Type value, lower case, without parameters;
/// at most 100 printable bytes, since it ends up in an error message.
std::string media_type(std::string_view value)
{
    value = value.substr(0, value.find(';'));
    std::string out;
    for (char c : value)
        if (c > ' ' && c < 0x7f && out.size() < 100)
            out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
}

/// Whether `</head` occurs in @p s (ASCII case-insensitive).
bool has_head_end(std::string_view s)
{
    for (auto at = s.find("</"); at != std::string_view::npos; at = s.find("</", at + 2))
    {
        auto const name = s.substr(at + 2, 4);
        if (name.size() == 4 && (name[0] | 0x20) == 'h' && (name[1] | 0x20) == 'e' &&
            (name[2] | 0x20) == 'a' && (name[3] | 0x20) == 'd')
            return true;
    }
    return false;
}

class fetch_job;

//------------------------------------------------------------------------------

// Admission, the FIFO of waiting jobs and the set of running ones. The
// counters are atomics so `fetch` can refuse without a round trip; the
// containers live on strand_.
class fetch_scheduler : public std::enable_shared_from_this<fetch_scheduler>
{
public:
    fetch_scheduler(net::io_context& ioc, fetch_options options);

    void submit(std::string url, std::function<void(fetch_result)> done);
    void shutdown();
    /// Called by a job once its callback ran (on any thread).
    void job_finished(fetch_job const* job);

    net::io_context& ioc() { return ioc_; }
    fetch_options const& options() const { return options_; }
    ssl::context& tls() { return tls_; }

private:
    void start_more(); // on strand_

    net::io_context& ioc_;
    fetch_options const options_;
    ssl::context tls_{ssl::context::tls_client};
    strand_type strand_;
    std::atomic<std::size_t> admitted_{0}; // queued + running
    std::atomic<bool> stopping_{false};
    std::deque<std::shared_ptr<fetch_job>> queue_;
    std::unordered_map<fetch_job const*, std::weak_ptr<fetch_job>> running_;
};

//------------------------------------------------------------------------------

// One fetch, redirects included. Every handler runs on strand_ and holds the
// job through shared_from_this(); finish() is the one exit.
class fetch_job : public std::enable_shared_from_this<fetch_job>
{
public:
    fetch_job(std::shared_ptr<fetch_scheduler> owner, std::string url,
              std::function<void(fetch_result)> done)
        : owner_(std::move(owner)), strand_(net::make_strand(owner_->ioc())),
          done_(std::move(done)), url_(std::move(url)), deadline_(strand_), resolver_(strand_)
    {
    }

    /// Any thread.
    void start()
    {
        net::dispatch(strand_, [self = shared_from_this()] { self->begin(); });
    }

    /// Any thread: ends the job with "enrichment shut down" unless it ended.
    void abort()
    {
        net::dispatch(strand_,
                      [self = shared_from_this()] { self->finish(error_result(shut_down_error)); });
    }

private:
    fetch_options const& options() const { return owner_->options(); }

    void begin()
    {
        if (finished_)
            return;
        deadline_.expires_after(options().timeout);
        deadline_.async_wait(
            [self = shared_from_this()](beast::error_code ec)
            {
                if (ec || self->finished_)
                    return;
                // What arrived of a body before the deadline is still a prefix
                // (the bytes past body_committed_ are a read still pending).
                self->body_.resize(self->body_committed_);
                if (self->reading_body_ && !self->body_.empty())
                    return self->complete_page();
                self->fail("timed out after " + std::to_string(self->options().timeout.count()) +
                           " ms");
            });
        do_hop();
    }

    // Parses url_ and checks its scheme; every redirect hop comes back here.
    void do_hop()
    {
        auto const parsed = urls::parse_uri(url_);
        if (!parsed)
            return fail("invalid URL");
        auto const& u = *parsed;
        if (u.scheme_id() != urls::scheme::http && u.scheme_id() != urls::scheme::https)
            return fail("unsupported URL scheme: " + std::string(u.scheme().substr(0, 20)));
        if (u.host_type() == urls::host_type::ipvfuture || u.encoded_host().empty())
            return fail("invalid URL");
        use_tls_ = u.scheme_id() == urls::scheme::https;
        host_ = u.host_address();
        host_is_name_ = u.host_type() == urls::host_type::name;
        port_ = u.has_port() && !u.port().empty() ? std::string(u.port())
                                                  : std::string(use_tls_ ? "443" : "80");
        std::string target(u.encoded_path().empty() ? std::string_view("/")
                                                    : std::string_view(u.encoded_path()));
        if (u.has_query())
            target += "?" + std::string(u.encoded_query());

        req_ = {http::verb::get, target, 11};
        req_.set(http::field::host, std::string(u.encoded_host_and_port()));
        req_.set(http::field::user_agent, options().user_agent);
        req_.set(http::field::accept, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1");
        req_.set(http::field::accept_encoding, "identity"); // the scanner reads raw bytes
        req_.keep_alive(false);

        tcp_.reset();
        tls_.reset();
        if (use_tls_)
            tls_.emplace(strand_, owner_->tls());
        else
            tcp_.emplace(strand_);
        resolver_.async_resolve(
            host_, port_, beast::bind_front_handler(&fetch_job::on_resolve, shared_from_this()));
    }

    beast::tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }

    template <class F> void with_stream(F&& f)
    {
        if (tls_)
            f(*tls_);
        else
            f(*tcp_);
    }

    void on_resolve(beast::error_code ec, tcp::resolver::results_type results)
    {
        if (finished_)
            return;
        if (ec)
            return fail("cannot resolve " + host_ + ": " + ec.message());
        if (results.empty())
            return fail("cannot resolve " + host_);
        // Every address, not just the first: the connect below may use any of
        // them, and a name that mixes public and private addresses is a trick.
        if (!options().allow_private)
            for (auto const& entry : results)
                if (auto const a = entry.endpoint().address(); is_forbidden_address(a))
                    return fail("address not allowed: " + a.to_string());
        // Connect to exactly these endpoints: resolving again could answer
        // differently (DNS rebinding) after the check.
        lowest().expires_never(); // deadline_ covers the whole fetch
        lowest().async_connect(
            results, beast::bind_front_handler(&fetch_job::on_connect, shared_from_this()));
    }

    void on_connect(beast::error_code ec, tcp::endpoint const&)
    {
        if (finished_)
            return;
        if (ec)
            return fail("cannot connect to " + host_ + ": " + ec.message());
        if (!tls_)
            return do_write();
        // SNI (never for an IP literal, RFC 6066) and the certificate's name.
        if (host_is_name_ && !SSL_set_tlsext_host_name(tls_->native_handle(), host_.c_str()))
            return fail("TLS setup failed");
        tls_->set_verify_callback(ssl::host_name_verification(host_));
        tls_->async_handshake(
            ssl::stream_base::client,
            beast::bind_front_handler(&fetch_job::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec)
    {
        if (finished_)
            return;
        if (ec)
            return fail("TLS handshake with " + host_ + " failed: " + ec.message());
        do_write();
    }

    void do_write()
    {
        with_stream(
            [&](auto& s)
            {
                http::async_write(
                    s, req_, beast::bind_front_handler(&fetch_job::on_write, shared_from_this()));
            });
    }

    void on_write(beast::error_code ec, std::size_t)
    {
        if (finished_)
            return;
        if (ec)
            return fail("cannot send the request: " + ec.message());
        buffer_.clear();
        parser_.emplace();
        parser_->header_limit(header_limit);
        // No parser body_limit: with a Content-Length above it Beast fails
        // before reading a byte, and a cut body is fine here. The loop in
        // do_read_body stops at max_body instead.
        parser_->body_limit(boost::none);
        with_stream(
            [&](auto& s)
            {
                http::async_read_header(
                    s, buffer_, *parser_,
                    beast::bind_front_handler(&fetch_job::on_header, shared_from_this()));
            });
    }

    void on_header(beast::error_code ec, std::size_t)
    {
        if (finished_)
            return;
        if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
            ec == net::error::eof || ec == ssl::error::stream_truncated)
            return fail("connection closed without an answer");
        if (ec)
            return fail("connection lost: " + ec.message());
        auto const& res = parser_->get();
        auto const status = res.result_int();
        if (is_redirect(status))
            return follow(res[http::field::location], status);
        if (status < 200 || status > 299)
            return fail("HTTP " + std::to_string(status));
        auto const type = media_type(res[http::field::content_type]);
        if (type != "text/html" && type != "application/xhtml+xml")
        {
            // Not a page, but the site's favicon is still a good guess for a chip.
            auto r = error_result("not an HTML page: " + (type.empty() ? "no Content-Type" : type),
                                  url_);
            r.meta.favicon = scan_html_meta({}, url_).favicon;
            return finish(std::move(r));
        }
        if (parser_->is_done())
            return complete_page();
        reading_body_ = true;
        body_.reserve(std::min(options().max_body, read_piece));
        do_read_body();
    }

    void follow(std::string_view location, unsigned status)
    {
        if (location.empty())
            return fail("HTTP " + std::to_string(status) + " without a Location");
        if (redirects_ >= options().max_redirects)
            return fail("too many redirects (more than " + std::to_string(options().max_redirects) +
                        ")");
        auto const base = urls::parse_uri(url_);
        auto const ref = urls::parse_uri_reference(location);
        urls::url next;
        if (!base || !ref || !urls::resolve(*base, *ref, next))
            return fail("HTTP " + std::to_string(status) + " to an invalid Location");
        next.remove_fragment();
        ++redirects_;
        url_ = std::string(next.buffer());
        close();
        do_hop(); // scheme and addresses are checked again for the new host
    }

    void do_read_body()
    {
        auto const have = body_.size();
        auto const room = std::min(read_piece, options().max_body - have);
        body_.resize(have + room);
        auto& b = parser_->get().body();
        b.data = body_.data() + have;
        b.size = room;
        with_stream(
            [&](auto& s)
            {
                http::async_read_some(
                    s, buffer_, *parser_,
                    beast::bind_front_handler(&fetch_job::on_body, shared_from_this(), have, room));
            });
    }

    void on_body(std::size_t have, std::size_t room, beast::error_code ec, std::size_t)
    {
        if (finished_)
            return;
        body_.resize(have + room - parser_->get().body().size);
        body_committed_ = body_.size();
        if (ec == http::error::need_buffer)
            ec = {}; // the piece is full
        // The meta tags live in <head>; past it (or at the cap) reading on
        // costs time and memory for nothing. A cut is not an error.
        auto const fresh_from = have >= 6 ? have - 6 : 0;
        if (parser_->is_done() || body_.size() >= options().max_body ||
            has_head_end(std::string_view(body_).substr(fresh_from)))
            return complete_page();
        if (ec)
        {
            // A connection lost mid-body still leaves a prefix to scan.
            if (!body_.empty())
                return complete_page();
            return fail("connection lost: " + ec.message());
        }
        do_read_body();
    }

    void complete_page()
    {
        fetch_result r;
        r.final_url = url_;
        r.meta = scan_html_meta(body_, url_);
        finish(std::move(r));
    }

    void fail(std::string error)
    {
        spdlog::debug("enrich: {}: {}", url_, error);
        finish(error_result(error, url_));
    }

    void close()
    {
        beast::error_code ignored;
        if (tcp_ || tls_)
            lowest().socket().close(ignored);
    }

    void finish(fetch_result r)
    {
        if (finished_)
            return;
        finished_ = true;
        deadline_.cancel();
        resolver_.cancel();
        close(); // no TLS close_notify: the connection is never reused
        if (r.final_url.empty())
            r.final_url = url_;
        body_ = {};
        auto done = std::move(done_);
        try
        {
            done(std::move(r));
        }
        catch (std::exception const& e)
        {
            // The callback's failure must not unwind through Asio.
            spdlog::error("enrich: completion handler threw: {}", e.what());
        }
        owner_->job_finished(this);
    }

    std::shared_ptr<fetch_scheduler> owner_;
    strand_type strand_;
    std::function<void(fetch_result)> done_;
    std::string url_; // the current hop
    int redirects_ = 0;
    net::steady_timer deadline_;
    tcp::resolver resolver_;
    bool use_tls_ = false;
    std::string host_; // for resolve, SNI and the certificate check (no brackets)
    bool host_is_name_ = false;
    std::string port_;
    std::optional<beast::tcp_stream> tcp_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
    http::request<http::empty_body> req_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::buffer_body>> parser_;
    std::string body_;               // at most max_body bytes
    std::size_t body_committed_ = 0; // body_ bytes that were read
    bool reading_body_ = false;
    bool finished_ = false;
};

//------------------------------------------------------------------------------

fetch_scheduler::fetch_scheduler(net::io_context& ioc, fetch_options options)
    : ioc_(ioc), options_(std::move(options)), strand_(net::make_strand(ioc))
{
    tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    tls_.set_default_verify_paths(ec);
    if (ec)
        spdlog::warn("enrich: no default CA paths: {}", ec.message());
    tls_.set_verify_mode(ssl::verify_peer);
}

void fetch_scheduler::submit(std::string url, std::function<void(fetch_result)> done)
{
    if (stopping_)
        return post_result(ioc_, std::move(done), error_result(shut_down_error, std::move(url)));
    auto const in_flight = std::max<std::size_t>(options_.max_in_flight, 1);
    if (admitted_.fetch_add(1) >= in_flight + options_.max_queued)
    {
        admitted_.fetch_sub(1);
        return post_result(ioc_, std::move(done),
                           error_result("enrichment queue full", std::move(url)));
    }
    auto job = std::make_shared<fetch_job>(shared_from_this(), std::move(url), std::move(done));
    net::post(strand_,
              [self = shared_from_this(), job = std::move(job)]() mutable
              {
                  if (self->stopping_)
                      return job->abort(); // shutdown's sweep may have run already
                  self->queue_.push_back(std::move(job));
                  self->start_more();
              });
}

void fetch_scheduler::start_more()
{
    auto const in_flight = std::max<std::size_t>(options_.max_in_flight, 1);
    while (!stopping_ && running_.size() < in_flight && !queue_.empty())
    {
        auto job = std::move(queue_.front());
        queue_.pop_front();
        running_.emplace(job.get(), job);
        job->start();
    }
}

void fetch_scheduler::job_finished(fetch_job const* job)
{
    net::post(strand_,
              [self = shared_from_this(), job]
              {
                  self->running_.erase(job);
                  self->admitted_.fetch_sub(1);
                  self->start_more();
              });
}

void fetch_scheduler::shutdown()
{
    if (stopping_.exchange(true))
        return;
    net::post(strand_,
              [self = shared_from_this()]
              {
                  for (auto& job : self->queue_)
                      job->abort();
                  self->queue_.clear();
                  for (auto& [key, weak] : self->running_)
                      if (auto job = weak.lock())
                          job->abort();
              });
}

} // namespace

//------------------------------------------------------------------------------

struct page_fetcher::state : fetch_scheduler
{
    using fetch_scheduler::fetch_scheduler;
};

page_fetcher::page_fetcher(boost::asio::io_context& ioc, fetch_options options)
    : state_(std::make_shared<state>(ioc, std::move(options)))
{
}

page_fetcher::~page_fetcher()
{
    try
    {
        state_->shutdown();
    }
    catch (std::exception const& e)
    {
        // Only allocation can fail here; a destructor must not throw.
        spdlog::error("enrich: shutdown failed: {}", e.what());
    }
}

void page_fetcher::fetch(std::string url, std::function<void(fetch_result)> done)
{
    state_->submit(std::move(url), std::move(done));
}

void page_fetcher::shutdown()
{
    state_->shutdown();
}

} // namespace chatstream::streaming
