#pragma once
/// @file page_fetcher.hpp
/// Link previews (issue 23, "Enrichment"): a bounded HTTP(S) GET of a cited
/// page with SSRF protection, and a scanner for its OpenGraph / `<title>` /
/// favicon tags. See docs/providers.md, "Link previews (enrichment)".
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::streaming
{

/// What a page says about itself. Every field is whitespace-collapsed,
/// entity-decoded, valid UTF-8 and capped (texts at `max_meta_text` bytes,
/// URLs at `max_meta_url` bytes); URLs are absolute `http`/`https`.
struct page_metadata
{
    std::optional<std::string> title, description, image, favicon;
};

/// Cap of `title` and `description`, in bytes (cut on a code point boundary).
inline constexpr std::size_t max_meta_text = 1024;
/// Longest `image` / `favicon` URL kept; a longer one is dropped, not cut.
inline constexpr std::size_t max_meta_url = 2048;

/// Scans an HTML prefix (it may end anywhere, even inside a tag) for
/// `og:title`/`og:description`/`og:image`, falling back to `twitter:*`,
/// `<title>` and `<meta name="description">`; the favicon from
/// `<link rel="icon"|"shortcut icon"|"apple-touch-icon">`, else
/// `/favicon.ico` of @p page_url's origin. Relative URLs are resolved against
/// `<base href>` or @p page_url. Linear in the input, no exceptions except
/// `std::bad_alloc`, allocates only for the results.
page_metadata scan_html_meta(std::string_view html, std::string_view page_url);

/// The SSRF rule: true for every address a link preview must not connect
/// to. IPv4: 0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local and
/// the cloud metadata address), 172.16/12, 192.0.0/24, 192.0.2/24,
/// 192.88.99/24, 192.168/16, 198.18/15 (benchmarking), 198.51.100/24,
/// 203.0.113/24 (documentation), 224/4 (multicast), 240/4 and
/// 255.255.255.255. IPv6: everything outside 2000::/3 (global unicast) except
/// the forms that embed an IPv4 address, which are classified by it:
/// `::ffff:a.b.c.d` (IPv4-mapped) and `64:ff9b::a.b.c.d` (NAT64, RFC 6052);
/// so ::, ::1, ::a.b.c.d (deprecated IPv4-compatible), fc00::/7, fe80::/10,
/// ff00::/8 are refused. Inside 2000::/3: 2001::/23 (IETF assignments:
/// Teredo, benchmarking, ORCHID) and 2001:db8::/32 (documentation) are
/// refused, and 2002::/16 (6to4) is classified by its embedded IPv4 address.
bool is_forbidden_address(boost::asio::ip::address const& address) noexcept;

/// Limits of a page_fetcher.
struct fetch_options
{
    /// Skip is_forbidden_address (tests, `--enrich-allow-private`).
    bool allow_private = false;
    /// One deadline for the whole fetch: resolve, connect, TLS, every
    /// redirect hop and the body.
    std::chrono::milliseconds timeout{5000};
    /// Body bytes read at most; the rest is not read and the prefix is
    /// scanned (a cut body is not an error).
    std::size_t max_body = 512 * 1024;
    /// Redirects (301/302/303/307/308) followed at most.
    int max_redirects = 3;
    /// Fetches running at once; the others wait in a FIFO.
    std::size_t max_in_flight = 16;
    /// Fetches waiting at most; beyond, `fetch` answers "enrichment queue full".
    std::size_t max_queued = 1024;
    std::string user_agent = "chatstream/1 (+link preview)";
};

/// The outcome of one fetch. On error `meta` may still hold the favicon
/// default (e.g. for a URL that is not an HTML page).
struct fetch_result
{
    page_metadata meta;
    /// Set when the fetch failed: "address not allowed: 10.0.0.1",
    /// "HTTP 404", "timed out after 5000 ms", "enrichment queue full", ...
    std::optional<std::string> error;
    /// The URL of the last hop reached (after redirects).
    std::string final_url;
};

/// Fetches pages for link previews on an io_context: HTTP/1.1 GET over
/// Beast, http and https only (TLS with SNI, certificate verified against
/// the system store), every resolved address checked with
/// is_forbidden_address before connecting, and only those checked addresses
/// used (no second resolution, so DNS rebinding cannot swap them).
///
/// Thread-safety: `fetch` and `shutdown` may be called from any thread.
/// Lifetime: the object may be destroyed while fetches run (the destructor
/// calls `shutdown`); the io_context must outlive it and keep running until
/// the callbacks have run, or they are destroyed uncalled with it.
class page_fetcher
{
public:
    /// Loads the system CA store once. Never throws for a missing store (a
    /// warning is logged and https fetches then fail verification).
    page_fetcher(boost::asio::io_context& ioc, fetch_options options);
    ~page_fetcher();
    page_fetcher(page_fetcher const&) = delete;
    page_fetcher& operator=(page_fetcher const&) = delete;

    /// Starts (or queues) a fetch of @p url. @p done runs exactly once, on
    /// an io_context thread and never inside this call: with the result, or
    /// with an error for a refused URL, a full queue, or a shutdown.
    void fetch(std::string url, std::function<void(fetch_result)> done);

    /// Refuses new fetches, fails the queued ones and aborts the running
    /// ones, each with the error "enrichment shut down". Idempotent.
    void shutdown();

private:
    struct state;
    std::shared_ptr<state> state_;
};

} // namespace chatstream::streaming
