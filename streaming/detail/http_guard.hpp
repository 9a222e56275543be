#pragma once
// Checks every request passes before it is routed: RFC 9112 message framing
// and the Origin of browser requests (docs/protocol.md, "HTTP").
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatstream::streaming::detail
{

struct http_refusal
{
    boost::beast::http::status status;
    std::string code; ///< the JSON error code
    std::string message;
};

/// Framing the server does not accept (RFC 9112 §6): a transfer coding other
/// than `chunked` alone (501), or both Transfer-Encoding and Content-Length
/// (400, request smuggling). Beast itself refuses duplicate or bad
/// Content-Length values while reading the header (see header_error_status).
std::optional<http_refusal> check_framing(boost::beast::http::fields const& header);

/// The status owed for an error from reading a request header (431 for too
/// large, 400 for malformed framing), or nullopt when the peer just went
/// away or timed out and nothing should be written.
std::optional<http_refusal> header_error_refusal(boost::beast::error_code ec);

/// Whether a request with this Origin may use the API. No Origin (not a
/// browser, or a same-origin GET) is allowed; otherwise the origin must be
/// the server's own (its host and port equal the Host header) or listed in
/// @p allowed (`--allowed-origins`, exact `scheme://host[:port]`).
/// With @p loopback_server (the server listens on 127.0.0.0/8 or ::1), the
/// same-origin rule also needs a loopback Host (localhost, 127.x, [::1]):
/// a DNS-rebinding page on evil.example resolved to 127.0.0.1 sends matching
/// Origin and Host headers, and must still be refused.
bool origin_allowed(std::string_view origin, std::string_view host,
                    std::vector<std::string> const& allowed, bool loopback_server);

/// `scheme://host[:port]` lower-cased with the scheme's default port dropped,
/// or empty if @p origin is not a tuple origin (e.g. "null").
std::string normalize_origin(std::string_view origin);

} // namespace chatstream::streaming::detail
