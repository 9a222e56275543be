#pragma once
// Small response builders shared by every HTTP route.
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace chatstream::streaming::detail
{

using string_response = boost::beast::http::response<boost::beast::http::string_body>;

/// A complete response with Server, Content-Type and Content-Length set.
string_response make_response(unsigned version, bool keep_alive, boost::beast::http::status status,
                              std::string_view content_type, std::string body);

/// `{"error":code,"message":message}` (the WebSocket error shape, docs/design.md §6).
/// A 401 also carries `WWW-Authenticate: Bearer`.
string_response make_json_error(unsigned version, bool keep_alive,
                                boost::beast::http::status status, std::string_view code,
                                std::string_view message);

/// A connection ending the way connections end: cancelled, timed out,
/// closed (TCP or WebSocket), reset, or a broken pipe. Such ends are logged
/// at trace level; anything else is worth a debug line.
bool is_expected_disconnect(boost::beast::error_code ec) noexcept;

/// Reads and drops what the peer still sends until it closes or the
/// stream's deadline passes (the caller sets it and shuts down its send
/// side first): closing with unread bytes resets the connection, and the
/// client could lose the answer just sent. @p owner keeps @p stream and
/// @p scratch alive.
template <class Owner>
void discard_until_closed(std::shared_ptr<Owner> owner, boost::beast::tcp_stream& stream,
                          boost::asio::mutable_buffer scratch)
{
    stream.async_read_some(scratch,
                           [owner = std::move(owner), &stream, scratch](boost::beast::error_code ec,
                                                                        std::size_t) mutable
                           {
                               if (!ec)
                                   discard_until_closed(std::move(owner), stream, scratch);
                           });
}

} // namespace chatstream::streaming::detail
