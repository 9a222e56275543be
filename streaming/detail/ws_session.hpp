#pragma once
// One WebSocket connection: reads client frames, dispatches them, and writes
// events from its bounded outbound queue, all on the socket's strand.
#include "detail/server_context.hpp"

#include "chatstream/streaming/generation.hpp"
#include "chatstream/streaming/outbound_queue.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <memory>
#include <string>

namespace chatstream::streaming::detail
{

/// The close code of a WebSocket whose token expired: 4401, reason "token
/// expired" (application range, RFC 6455 §7.4.2; 4401 as in graphql-ws, so
/// a client tells it from 1008 without parsing the reason). The client
/// reconnects with a fresh token and subscribes from its offsets.
inline constexpr auto token_expired_close_code =
    static_cast<boost::beast::websocket::close_code>(4401);

/// Templated on the stream under the WebSocket, as Beast's own sessions are,
/// so the session runs over `beast::tcp_stream` in the server and over
/// `beast::test::stream` (with `fail_count`) in tests/streaming/ws_session_test.cpp.
/// The member functions are in ws_session_impl.hpp; ws_session.cpp compiles
/// the tcp_stream one.
template <class NextLayer>
class basic_ws_session : public subscriber,
                         public log_listener,
                         public session_handle,
                         public std::enable_shared_from_this<basic_ws_session<NextLayer>>
{
public:
    /// @p next_layer must carry the session's strand as its executor.
    /// @p expires_at_s is the token's `exp`: the session is closed with
    /// token_expired_close_code then (docs/design.md §6, docs/protocol.md).
    basic_ws_session(NextLayer&& next_layer, std::shared_ptr<server_context> ctx,
                     std::string user_id, std::optional<std::int64_t> expires_at_s,
                     admission_ticket ticket);
    ~basic_ws_session() override;

    /// Completes the upgrade of @p req, then starts reading.
    void run(boost::beast::http::request<boost::beast::http::string_body> req);

    /// Queues a reply or `changed` event (bounded queue). Thread-safe: posts to the strand.
    void deliver(frame f) override;

    /// Follows a generation by cursor: its events are pulled from the log
    /// when the socket can take a write, so a slow reader costs no queue.
    /// Thread-safe: posts to the strand.
    std::shared_ptr<void> follow(std::shared_ptr<stream_log> log, stream_log::cursor from,
                                 std::weak_ptr<subscriber> self) override;

    /// The socket's strand: generations this session starts run on it.
    std::optional<session_strand> home_strand() const override;

    /// A followed log grew. Runs inline when called on this session's strand
    /// (a generation it started), else posts there.
    void on_log_ready() override;

    /// Flushes what is queued, then closes with @p code. Thread-safe.
    void close(boost::beast::websocket::close_code code) override;

private:
    void on_accept(boost::beast::error_code ec);
    void do_read();
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    void handle(std::string_view text);
    void enqueue(frame f);
    void do_write();
    bool write_from_logs();
    struct subscription;
    void fetch_stored(subscription const& sub, std::size_t max_bytes);
    void on_stored(std::shared_ptr<stream_log> const& log, stream_log::cursor::stored_range range,
                   std::string bytes, bool ok);
    void on_write(boost::beast::error_code ec, std::size_t bytes);
    void do_close(boost::beast::websocket::close_reason reason);
    void close_at_expiry();
    void fail(boost::beast::error_code ec, char const* what);

    boost::beast::websocket::stream<NextLayer> ws_;
    boost::beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    std::string user_id_;
    request_parser parser_;
    outbound_queue queue_;
    frame writing_;
    /// One generation this socket follows, and how far it got.
    struct subscription
    {
        std::shared_ptr<stream_log> log;
        stream_log::cursor cursor;
    };
    std::vector<subscription> subscriptions_;
    std::optional<session_strand> strand_; ///< the socket's, when it has one
    std::size_t next_subscription_ = 0;    ///< round robin between them
    std::string delta_text_;               ///< scratch: text pulled from a log
    std::string delta_frame_;              ///< the text-delta being written
    boost::asio::steady_timer close_timer_;
    boost::asio::steady_timer expiry_timer_;
    std::optional<std::int64_t> expires_at_s_;
    admission_ticket ticket_; ///< this connection's place under --max-connections
    std::string close_text_ = "server shutting down";
    bool accepted_ = false;
    bool write_in_flight_ = false;
    bool closing_ = false;
    bool close_after_flush_ = false;
    bool read_paused_ = false;
    int queries_in_flight_ = 0;
    boost::beast::websocket::close_code close_code_ = boost::beast::websocket::close_code::normal;
};

/// The server's session.
using ws_session = basic_ws_session<boost::beast::tcp_stream>;
extern template class basic_ws_session<boost::beast::tcp_stream>;

} // namespace chatstream::streaming::detail
