#pragma once
/// @file sse_parser.hpp
/// An incremental parser for `text/event-stream` (Server-Sent Events, WHATWG
/// HTML §9.2.6), the framing of streaming chat completions.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::streaming
{

/// One dispatched event.
struct sse_event
{
    std::string type = "message"; ///< the `event:` field, "message" by default
    std::string data;             ///< `data:` lines joined with '\n'
    std::string id;               ///< the last `id:` seen so far (it persists across events)
};

/// Turns a byte stream cut anywhere into events.
///
/// Bytes go in through `feed` in pieces of any size (one byte, half a line,
/// half a UTF-8 sequence, several events); `next` hands out every event
/// completed so far. Lines end with CRLF, LF or CR (a CRLF split across two
/// pieces is one line end). A leading UTF-8 BOM is skipped; `:` lines are
/// comments (keep-alives) and are counted; unknown fields are ignored; an
/// event is dispatched at a blank line and only if it has data, as the
/// specification says. Bytes are passed through as they are: the parser
/// never cuts inside a line, so a UTF-8 sequence is never split by it.
///
/// Memory is bounded: a line or an event larger than @p max_event_bytes
/// puts the parser in the failed state, where it ignores further input.
///
/// Not thread-safe; one parser per stream.
class sse_parser
{
public:
    /// @param max_event_bytes  bound on one line and on one event's data
    explicit sse_parser(std::size_t max_event_bytes = 4 * 1024 * 1024);

    /// Appends @p bytes to the input. Cheap: nothing is parsed until `next`.
    void feed(std::string_view bytes);

    /// The next complete event in the input fed so far, or std::nullopt when
    /// more input is needed (or the parser failed). Each line is scanned once,
    /// however small the pieces it arrived in.
    std::optional<sse_event> next();

    /// True once a line or an event went over the size bound.
    bool failed() const noexcept { return failed_; }

    /// Comment lines seen so far (`: keep-alive`, `:ping` ...).
    std::size_t comments() const noexcept { return comments_; }

    /// True when input is buffered that does not yet form an event: a
    /// partial line, or lines of an event whose blank line has not come.
    /// At the end of a stream, such an event is discarded (per the spec).
    bool has_partial_event() const noexcept;

private:
    // Applies one complete line; returns true when it dispatched an event.
    bool on_line(std::string_view line);
    void compact();

    std::size_t max_;
    std::string buf_;      // unparsed input is buf_[pos_, end)
    std::size_t pos_ = 0;  // start of the current, unterminated line
    std::size_t scan_ = 0; // buf_[pos_, scan_) holds no line terminator
    bool skip_lf_ = false; // the previous line ended with CR: a leading LF belongs to it
    bool bom_checked_ = false;
    bool failed_ = false;
    bool has_fields_ = false; // a field line of the current event was seen
    std::size_t comments_ = 0;

    std::string data_;
    std::string type_;
    std::string last_id_;
    sse_event ready_;
};

} // namespace chatstream::streaming
