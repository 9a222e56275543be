#pragma once
/// @file protocol.hpp
/// Client requests (parsed with simdjson) and server events (serialized once,
/// shared by every subscriber) of the WebSocket protocol, docs/design.md §6.
#include "chatstream/streaming/error.hpp"
#include "chatstream/streaming/outbound_queue.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace chatstream::streaming
{

/// The longest request id, model name or other identifier a client may send,
/// on every path (WebSocket frames, `/api/chat`): it is stored and echoed.
inline constexpr std::size_t max_identifier_bytes = 128;

/// A request id exactly as the client spelled it (a JSON string or integer),
/// echoed verbatim in replies.
using request_id = std::optional<std::string>;

struct attachment_input
{
    std::string type; ///< image | file | audio
    std::string name;
    std::string storage_id;
    std::string mime_type;
    std::int64_t size = 0;
    std::optional<std::string> metadata; ///< canonical JSON object text
};

struct generate_request
{
    request_id id;
    std::optional<std::string> conversation_id;
    std::string content;
    std::optional<std::string> model;
    std::vector<attachment_input> attachments;
};

struct subscribe_request
{
    request_id id;
    std::string message_id;
    std::uint64_t from_offset = 0;           ///< UTF-16 units of the text
    std::uint64_t from_reasoning_offset = 0; ///< UTF-16 units of the reasoning (docs/design.md §9)
};

struct cancel_request
{
    request_id id;
    std::string message_id;
};

enum class query_name
{
    list_conversations,
    list_messages,
    get_message,
    get_tool_calls,
    get_attachments,
    get_usage,
    get_sources
};

struct query_request
{
    request_id id;
    query_name name = query_name::list_conversations;
    std::optional<std::string> conversation_id;
    std::optional<std::string> message_id;
    std::optional<std::string> cursor;
    std::size_t limit = 50;
    bool include_partial = false;
    std::optional<std::string> from_day; ///< getUsage: YYYY-MM-DD (UTC)
    std::optional<std::string> to_day;
};

struct ping_request
{
    request_id id;
};

enum class mutation_name
{
    create_conversation,
    update_conversation,
    delete_conversation,
    delete_message,
    regenerate,
    retry,
    branch
};

/// `mutate` (docs/design.md §6). Which fields are set depends on the name:
/// create/updateConversation take the conversation fields, the others a
/// conversation or message id. Absent fields leave a conversation unchanged;
/// model and systemPrompt may be JSON null to clear them.
struct mutate_request
{
    request_id id;
    mutation_name name = mutation_name::create_conversation;
    std::optional<std::string> conversation_id;
    std::optional<std::string> message_id;
    std::optional<std::string> title;
    std::optional<bool> pinned;
    std::optional<bool> archived;
    std::optional<bool> starred;
    std::optional<std::optional<std::string>> model;
    std::optional<std::optional<std::string>> system_prompt;
};

/// `watch`: push `changed` events for the caller's data to this socket.
struct watch_request
{
    request_id id;
};

using client_request = std::variant<generate_request, subscribe_request, cancel_request,
                                    query_request, ping_request, mutate_request, watch_request>;

/// Why a frame was refused; becomes an `error` event.
struct protocol_error
{
    wire_error code = wire_error::bad_request;
    std::string message;
    request_id id; ///< when the frame carried a usable one
};

/// Parses client text frames. Keeps its simdjson buffers between calls, so
/// keep one per session. Not thread-safe.
class request_parser
{
public:
    request_parser();
    ~request_parser();
    request_parser(request_parser&&) noexcept;
    request_parser& operator=(request_parser&&) noexcept;

    /// Parses and validates one frame: JSON object, known `type`, every
    /// required field present with the right type. Never throws.
    std::variant<client_request, protocol_error> parse(std::string_view text);

    /// Frames up to this size keep the parser's buffers for the next one;
    /// a larger frame's buffers are freed once it is parsed.
    static constexpr std::size_t retained_capacity = 4096;

private:
    std::variant<client_request, protocol_error> parse_frame(std::string_view text);

    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Builders of server events. Each returns a frame whose payload is shared.
namespace events
{

frame ack(request_id const& id, std::string_view conversation_id, std::string_view user_message_id,
          std::string_view message_id);
frame start(std::string_view message_id, std::string_view conversation_id);
/// @p offset is the UTF-16 offset of the delta's first unit; @p delta must be
/// whole UTF-8 code points.
frame text_delta(std::string_view message_id, std::uint64_t offset, std::string_view delta);
/// Writes the same bytes as text_delta() into @p out (cleared first), with
/// no allocation once @p out has grown: the per-socket path of every token.
void write_text_delta(std::string& out, std::string_view message_id, std::uint64_t offset,
                      std::string_view delta);
/// The reasoning stream (docs/design.md §9): @p offset counts UTF-16 units of
/// the message's reasoning text, apart from the answer's.
frame reasoning_start(std::string_view message_id);
frame reasoning_delta(std::string_view message_id, std::uint64_t offset, std::string_view delta);
void write_reasoning_delta(std::string& out, std::string_view message_id, std::uint64_t offset,
                           std::string_view delta);
frame reasoning_end(std::string_view message_id);
/// `{"type":"source","messageId","position","url","title"?,"snippet"?}`
/// (docs/design.md §9): sent once the citation's row is committed.
frame source(std::string_view message_id, std::int64_t position, std::string_view url,
             std::optional<std::string_view> title, std::optional<std::string_view> snippet);
frame tool_input_start(std::string_view message_id, std::string_view tool_call_id,
                       std::string_view tool_name, std::uint64_t text_position);
frame tool_input_delta(std::string_view message_id, std::string_view tool_call_id,
                       std::string_view input_text_delta);
/// @p input_json must be valid JSON text.
frame tool_input_available(std::string_view message_id, std::string_view tool_call_id,
                           std::string_view tool_name, std::string_view input_json,
                           std::uint64_t text_position);
/// @p output_json must be valid JSON text.
frame tool_output_available(std::string_view message_id, std::string_view tool_call_id,
                            std::string_view output_json);
frame tool_output_error(std::string_view message_id, std::string_view tool_call_id,
                        std::string_view error_text);

struct finish_info
{
    std::string status; ///< complete | stopped | error | interrupted
    std::string finish_reason;
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0; ///< includes the reasoning tokens, as upstreams count them
    std::optional<std::string> error;
    std::int64_t reasoning_tokens = 0;
};
frame finish(std::string_view message_id, finish_info const& info);

frame error(request_id const& id, std::optional<std::string_view> message_id, wire_error code,
            std::string_view message);
frame pong(request_id const& id);
/// @p data_json must be valid JSON text.
frame result(request_id const& id, std::string_view data_json);
/// `{"type":"changed","entity","op","id","conversationId","data"?}`: a row of
/// the caller's data was inserted, updated or deleted. @p data_json (valid
/// JSON object text) holds the whole row on insert, only the changed fields
/// on update, and is omitted on delete.
frame changed(std::string_view entity, std::string_view op, std::string_view id,
              std::string_view conversation_id, std::optional<std::string_view> data_json);

} // namespace events
} // namespace chatstream::streaming
