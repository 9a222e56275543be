#pragma once
/// @file types.hpp
/// Row types of the normalized tables (docs/design.md §4). Plain values.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chatstream::storage
{

struct user_row
{
    std::string id;
    std::optional<std::string> external_id;
    std::optional<std::string> name;
    std::int64_t created_at = 0;
};

struct conversation_row
{
    std::string id;
    std::string user_id;
    std::string title = "New Chat";
    std::optional<std::string> model;
    bool pinned = false;
    bool archived = false;
    bool starred = false;
    std::int64_t message_count = 0;
    std::optional<std::string> system_prompt;
    std::optional<std::int64_t> last_message_at;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

/// Message status; terminal ones are never overwritten by a streaming write.
namespace status
{
inline constexpr char const* pending = "pending";
inline constexpr char const* generating = "generating";
inline constexpr char const* complete = "complete";
inline constexpr char const* error = "error";
inline constexpr char const* stopped = "stopped";
inline constexpr char const* interrupted = "interrupted";
} // namespace status

inline bool is_terminal_status(std::string const& s)
{
    return s != status::pending && s != status::generating;
}

struct message_row
{
    std::string id;
    std::string conversation_id;
    std::string user_id;
    std::string role; ///< user | assistant | system
    std::string content;
    std::optional<std::string> partial_content;
    std::string status = status::complete;
    std::optional<std::string> model;
    std::optional<std::string> error;
    std::optional<std::string> finish_reason;
    std::optional<std::int64_t> input_tokens;
    std::optional<std::int64_t> output_tokens;
    std::optional<double> cost;
    std::optional<double> tokens_per_second;
    std::optional<std::int64_t> first_token_at;
    std::optional<std::int64_t> generation_started_at;
    std::optional<std::int64_t> generation_completed_at;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    // Reasoning and its timing (docs/design.md §9).
    std::optional<std::string> reasoning;
    std::optional<std::string>
        partial_reasoning; ///< with the appended chunks, like partial_content
    std::optional<std::int64_t> reasoning_tokens;
    std::optional<std::int64_t> thinking_started_at;
    std::optional<std::int64_t> thinking_completed_at;
};

struct attachment_row
{
    std::string id;
    std::string message_id;
    std::string conversation_id;
    std::string user_id;
    std::int64_t position = 0;
    std::string type; ///< image | file | audio
    std::string name;
    std::string storage_id;
    std::string mime_type;
    std::int64_t size = 0;
    std::optional<std::string> metadata; ///< canonical JSON object text
    std::int64_t created_at = 0;
};

struct tool_call_row
{
    std::string id;
    std::string message_id;
    std::string conversation_id;
    std::string user_id;
    std::string tool_call_id;
    std::string tool_name;
    std::string args = "{}";                   ///< canonical JSON text
    std::optional<std::string> result;         ///< canonical JSON text
    std::optional<std::int64_t> text_position; ///< UTF-16 units
    bool is_partial = true;
    std::int64_t timestamp = 0;
    std::int64_t created_at = 0;
};

/// Keyset page request: rows strictly after @p cursor in the listing order.
struct page_request
{
    std::optional<std::string> cursor;
    std::size_t limit = 50;
};

template <class Row> struct page
{
    std::vector<Row> rows;
    std::optional<std::string> next_cursor; ///< absent on the last page
};

} // namespace chatstream::storage
