#pragma once
/// @file ui_message_stream.hpp
/// The AI SDK "UI message stream" (protocol v1, header
/// `x-vercel-ai-ui-message-stream: v1`) spoken by `POST /api/chat`: the
/// conversion of the hub's WebSocket events (docs/design.md §6) into its parts,
/// SSE-encoded, and the parsing of the `useChat` request body. No I/O, so
/// both are unit-tested (tests/streaming/ui_message_stream_test.cpp).
///
/// The parts carry exactly the fields of the AI SDK 5.0.0 schema, which
/// validated them with `strictObject` (5.0.x later and 6/7 are loose): any
/// extra field would make those clients reject the stream. chatstream's own
/// data (conversation id, terminal status, finish reason, usage) goes into
/// `messageMetadata` of `start` / `finish`, which every version accepts.
#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace chatstream::streaming::ai_sdk
{

/// Turns the events of one assistant message into UI message stream parts.
///
/// - `start` -> `start` (messageId; metadata `conversationId`)
/// - `text-delta` -> `text-start` (when no text part is open) + `text-delta`;
///   a delta that repeats text already passed on (by its UTF-16 `offset`) is
///   cut, so a replay never duplicates text.
/// - `reasoning-start|-delta|-end` -> the same parts with a part `id`
///   (`reasoning-N`); a delta is cut by its `offset` like text, and one that
///   comes without a start (a resume mid-reasoning) opens a part first.
/// - `tool-input-start|-delta|-available`, `tool-output-available|-error`:
///   the open text part is ended first (`text-end`), so the text after a tool
///   call is a new text part and the assembled `parts` keep the call at its
///   position. `tool-input-delta` of a call whose start was not seen (a
///   replay starts at `tool-input-available`) is dropped.
/// - `finish` -> `text-end`, then `abort` (status `stopped`) or
///   `error` (status `error`/`interrupted`, with the error text), then
///   `finish` with metadata `{status, finishReason, usage}`, then `[DONE]`.
/// - `error` -> `text-end`, `error`, `[DONE]`.
/// - `ack`, `pong`, `result` and unknown events produce nothing.
///
/// Thread-safety: none (one per HTTP stream, used on its strand).
class ui_message_encoder
{
public:
    /// Appends the SSE lines (`data: {...}\n\n`) for @p event_json, one
    /// serialized server event, to @p out. Events after the end are ignored.
    /// @return true once the stream has ended (`data: [DONE]` appended).
    bool encode(std::string_view event_json, std::string& out);

    bool done() const noexcept { return done_; }
    std::string const& message_id() const noexcept { return message_id_; }

private:
    void close_text(std::string& out); ///< closes an open reasoning part too
    void close_reasoning(std::string& out);
    void open_reasoning(std::string& out);
    static bool new_units(boost::json::object const& e, std::uint64_t passed,
                          std::string_view& delta, std::uint64_t& offset);

    std::string message_id_;
    std::optional<std::string> open_text_; ///< id of the text part being streamed
    unsigned text_parts_ = 0;
    std::uint64_t u16_ = 0;                     ///< UTF-16 units of text passed on so far
    std::optional<std::string> open_reasoning_; ///< id of the reasoning part being streamed
    unsigned reasoning_parts_ = 0;
    std::uint64_t reasoning_u16_ = 0; ///< UTF-16 units of reasoning passed on so far
    std::string started_tool_;        ///< ids of calls whose tool-input-start was sent, '\n'-joined
    bool done_ = false;
};

/// The SSE comment chatstream sends every 15 s while a stream is idle, so
/// proxies keep the connection and a dead client is noticed. Parsers ignore it.
inline constexpr std::string_view keep_alive_comment = ": keep-alive\n\n";

/// What `POST /api/chat` needs from a `useChat` request body.
struct chat_request
{
    std::string chat_id;              ///< `id`: becomes the conversation id
    std::string content;              ///< the text parts of the last message, joined
    std::optional<std::string> model; ///< optional top-level `model`
    /// `trigger: "regenerate-message"`: replace the assistant message
    /// `messageId` (and drop what follows it) instead of adding a message.
    std::optional<std::string> regenerate_message_id;
};

/// 1..128 characters of `[A-Za-z0-9_-]`: what `useChat`'s `generateId()`
/// produces and what chatstream's own ids look like.
bool valid_chat_id(std::string_view id) noexcept;

/// Largest accepted message text (the WebSocket frame limit).
inline constexpr std::size_t max_content_bytes = 64 * 1024;

/// Parses `{id, messages:[{role, parts:[{type:"text", text}, ...]}, ...],
/// trigger?, model?}` (DefaultChatTransport's body). Only the last message is
/// used: it must be a `user` message with at least one non-empty text part;
/// the server keeps the history itself. Other part types (files, data) are
/// ignored. `trigger: "regenerate-message"` needs `messageId` (the
/// assistant message to replace); its messages are not read.
/// @return the request, or an error message naming the problem.
std::variant<chat_request, std::string> parse_chat_request(std::string_view body);

} // namespace chatstream::streaming::ai_sdk
