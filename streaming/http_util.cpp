#include "detail/http_util.hpp"

#include "chatstream/core/json.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>

namespace chatstream::streaming::detail
{

namespace http = boost::beast::http;

string_response make_response(unsigned version, bool keep_alive, http::status status,
                              std::string_view content_type, std::string body)
{
    string_response res(status, version);
    res.set(http::field::server, "chatstream");
    res.set(http::field::content_type, content_type);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

string_response make_json_error(unsigned version, bool keep_alive, http::status status,
                                std::string_view code, std::string_view message)
{
    auto res = make_response(version, keep_alive, status, "application/json",
                             R"({"error":)" + core::json_string(code) + R"(,"message":)" +
                                 core::json_string(message) + "}");
    if (status == http::status::unauthorized)
        res.set(http::field::www_authenticate, "Bearer");
    return res;
}

bool is_expected_disconnect(boost::beast::error_code ec) noexcept
{
    namespace net = boost::asio;
    namespace beast = boost::beast;
    return ec == net::error::operation_aborted || ec == beast::error::timeout ||
           ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == beast::http::error::end_of_stream ||
           ec == beast::websocket::error::closed;
}

} // namespace chatstream::streaming::detail
