#pragma once
// Small response builders shared by every HTTP route.
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>
#include <string_view>

namespace chatstream::streaming::detail
{

using string_response = boost::beast::http::response<boost::beast::http::string_body>;

/// A complete response with Server, Content-Type and Content-Length set.
string_response make_response(unsigned version, bool keep_alive, boost::beast::http::status status,
                              std::string_view content_type, std::string body);

/// `{"error":code,"message":message}` (the WebSocket error shape, DESIGN.md §6).
/// A 401 also carries `WWW-Authenticate: Bearer`.
string_response make_json_error(unsigned version, bool keep_alive,
                                boost::beast::http::status status, std::string_view code,
                                std::string_view message);

} // namespace chatstream::streaming::detail
