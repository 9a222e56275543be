#pragma once
// What the upload and download sessions share (streaming/file_upload.cpp,
// streaming/file_download.cpp): auth and user resolution, error answers,
// keep-alive hand-back and the lingering close. Private to streaming/.
#include "detail/file_routes.hpp"

#include "detail/auth.hpp"
#include "detail/http_routes.hpp"
#include "detail/http_util.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/file_name.hpp"
#include "chatstream/core/image_info.hpp"
#include "chatstream/storage/files.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/multipart.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <memory>
#include <optional>

namespace chatstream::streaming::detail
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr std::size_t chunk_size = 64 * 1024;
constexpr auto io_timeout = std::chrono::seconds(30);

/// An HTTP error decided while handling a request.
struct http_failure
{
    http::status status;
    std::string code;
    std::string message;
};

inline void log_fail(beast::error_code ec, char const* what)
{
    if (is_expected_disconnect(ec))
        return spdlog::trace("files: {}: {}", what, ec.message());
    spdlog::debug("files: {}: {}", what, ec.message());
}

//------------------------------------------------------------------------------

/// Shared plumbing: auth + user resolution, writing a response, handing the
/// connection back (keep-alive) or closing it gracefully.
template <class Derived> class file_session : public std::enable_shared_from_this<Derived>
{
protected:
    file_session(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                 std::shared_ptr<server_context> ctx)
        : stream_(std::move(stream)), buffer_(std::move(buffer)), ctx_(std::move(ctx))
    {
    }

    Derived& self() { return static_cast<Derived&>(*this); }

    /// Authenticates like /ws, resolves the user on the writer, then calls
    /// self().on_user(user_id) on this connection's strand.
    void authenticate_then(std::string_view target, std::string_view authorization)
    {
        auto auth = authorize(*ctx_, target, authorization);
        if (!auth.ok)
            return fail_with({http::status::unauthorized, "unauthorized", auth.error});
        resolve_user_on(*ctx_, auth.external_id, stream_.get_executor(),
                        [s = this->shared_from_this()](std::error_code ec, std::string user_id)
                        {
                            if (ec)
                                return s->fail_with({http::status::internal_server_error,
                                                     "internal", "could not resolve user"});
                            s->on_user(user_id);
                        });
    }

    /// Answers an error. When the request body was not read to the end the
    /// connection cannot be reused: the answer says `Connection: close`.
    void fail_with(http_failure const& f)
    {
        bool const reusable = keep_alive_ && self().body_consumed();
        auto res = std::make_shared<string_response>(
            make_json_error(version_, reusable, f.status, f.code, f.message));
        if (f.status == http::status::method_not_allowed)
            res->set(http::field::allow, self().allowed_methods());
        write(std::move(res));
    }

    template <class Response> void write(std::shared_ptr<Response> res)
    {
        stream_.expires_after(io_timeout);
        http::async_write(stream_, *res,
                          [s = this->shared_from_this(), res](beast::error_code ec, std::size_t)
                          {
                              if (ec)
                                  return log_fail(ec, "write");
                              s->after_write(res->keep_alive());
                          });
    }

    void after_write(bool keep_alive)
    {
        if (keep_alive)
            return resume_http(std::move(stream_), std::move(buffer_), ctx_);
        linger();
    }

    /// Closes without losing the response: a peer still sending a body it
    /// was refused would otherwise get a RST that can discard our answer
    /// from its receive buffer. Half-close, then read and drop what comes
    /// for a short while (what servers call a lingering close).
    void linger()
    {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec)
            return;
        linger_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        do_linger();
    }

    void do_linger()
    {
        if (!linger_buf_)
            linger_buf_ = std::make_unique<char[]>(chunk_size);
        stream_.expires_at(linger_until_);
        stream_.async_read_some(net::buffer(linger_buf_.get(), chunk_size),
                                [s = this->shared_from_this()](beast::error_code ec, std::size_t)
                                {
                                    if (ec)
                                    {
                                        beast::error_code ignored;
                                        s->stream_.socket().close(ignored);
                                        return;
                                    }
                                    s->do_linger();
                                });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    std::chrono::steady_clock::time_point linger_until_;
    std::unique_ptr<char[]> linger_buf_;
};

} // namespace chatstream::streaming::detail
