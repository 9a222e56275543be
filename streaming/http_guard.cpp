#include "detail/http_guard.hpp"

#include <boost/asio/ip/address_v4.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>

namespace chatstream::streaming::detail
{

namespace http = boost::beast::http;

namespace
{

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

/// localhost, 127.0.0.0/8 or [::1], with or without a port.
bool is_loopback_host(std::string_view host)
{
    std::string_view name = host;
    if (name.starts_with('['))
        name = name.substr(0, name.find(']') + 1);
    else if (auto const colon = name.rfind(':'); colon != std::string_view::npos)
        name = name.substr(0, colon);
    if (name == "localhost" || name == "[::1]")
        return true;
    boost::system::error_code ec;
    auto const a = boost::asio::ip::make_address_v4(std::string(name), ec);
    return !ec && a.is_loopback();
}

} // namespace

std::optional<http_refusal> check_framing(http::fields const& header)
{
    auto const te = header.equal_range(http::field::transfer_encoding);
    if (te.first == te.second)
        return std::nullopt;
    if (header.count(http::field::content_length))
        return http_refusal{http::status::bad_request, "bad_request",
                            "a request may not carry both Transfer-Encoding and Content-Length"};
    // Every Transfer-Encoding line, joined, must be exactly `chunked`: the
    // server decodes no other coding, and a body it cannot delimit must not
    // be read as the next request.
    std::string codings;
    for (auto it = te.first; it != te.second; ++it)
        codings += (codings.empty() ? "" : ",") + std::string(it->value());
    if (lower(trim(codings)) != "chunked")
        return http_refusal{http::status::not_implemented, "bad_request",
                            "unsupported transfer coding '" + codings.substr(0, 64) +
                                "' (only chunked is accepted)"};
    return std::nullopt;
}

std::optional<http_refusal> header_error_refusal(boost::beast::error_code ec)
{
    if (ec == http::error::header_limit)
        return http_refusal{http::status::request_header_fields_too_large, "bad_request",
                            "request header is larger than 8192 bytes"};
    // Peer gone, timeout, shutdown: there is nobody to answer.
    if (ec.category() != http::make_error_code(http::error::bad_method).category() ||
        ec == http::error::end_of_stream || ec == http::error::partial_message)
        return std::nullopt;
    return http_refusal{http::status::bad_request, "bad_request",
                        "malformed request header: " + ec.message()};
}

std::string normalize_origin(std::string_view origin)
{
    auto u = boost::urls::parse_absolute_uri(trim(origin));
    if (!u || !u->has_authority() || !u->encoded_path().empty() || u->has_query() ||
        u->has_fragment() || u->has_userinfo())
        return {};
    auto const scheme = lower(u->scheme());
    if (scheme != "http" && scheme != "https")
        return {};
    auto out = scheme + "://" + lower(u->encoded_host());
    auto const port = std::string(u->port());
    bool const default_port =
        port.empty() || (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
    if (!default_port)
        out += ":" + port;
    return out;
}

bool origin_allowed(std::string_view origin, std::string_view host,
                    std::vector<std::string> const& allowed, bool loopback_server)
{
    if (origin.empty())
        return true;
    auto const o = normalize_origin(origin);
    if (o.empty())
        return false; // "null" (sandboxed frames, file:) and anything odd
    for (auto const& a : allowed)
        if (normalize_origin(a) == o)
            return true;
    // Same origin: the page was served by this host:port (either scheme:
    // TLS may end at a proxy in front of us).
    auto const authority = o.substr(o.find("://") + 3);
    auto const h = lower(trim(host));
    auto strip_default = [](std::string const& a, std::string_view port)
    {
        return a.size() > port.size() && a.compare(a.size() - port.size(), port.size(), port) == 0
                   ? a.substr(0, a.size() - port.size())
                   : a;
    };
    bool const same = !h.empty() && (h == authority || strip_default(h, ":80") == authority ||
                                     strip_default(h, ":443") == authority);
    return same && (!loopback_server || is_loopback_host(h));
}

} // namespace chatstream::streaming::detail
