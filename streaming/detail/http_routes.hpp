#pragma once
// HTTP routes that take over the connection once the request header is read:
// they read (or stream) their own body and write their own response, e.g. an
// SSE stream or a file upload. Everything else is answered by http_session.
#include "detail/server_context.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <memory>
#include <string_view>

namespace chatstream::streaming::detail
{

using header_parser = boost::beast::http::request_parser<boost::beast::http::empty_body>;

/// Owns the connection from here on. When it is done with a keep-alive
/// request it calls resume_http; otherwise it shuts the socket down.
using connection_route = void (*)(boost::beast::tcp_stream&& stream,
                                  boost::beast::flat_buffer&& buffer, header_parser&& parser,
                                  std::shared_ptr<server_context> const& ctx);

/// The route for @p path (origin-form path, no query), or nullptr.
connection_route find_connection_route(std::string_view path);

/// Continues the keep-alive loop of a plain HTTP session on @p stream;
/// @p buffer may already hold bytes of the next request.
void resume_http(boost::beast::tcp_stream&& stream, boost::beast::flat_buffer&& buffer,
                 std::shared_ptr<server_context> ctx);

} // namespace chatstream::streaming::detail
