#pragma once
/// @file repositories.hpp
/// Reads and writes of the normalized tables.
///
/// Every function takes the connection it runs on: writes are called from
/// writer jobs (inside the writer's transaction), reads from read-pool jobs.
/// Every read that a client can trigger takes the caller's user id and finds
/// nothing for someone else's rows (std::nullopt / empty), so "not yours" and
/// "does not exist" are indistinguishable to the caller.
///
/// While the legacy columns of migration 001 still exist (phases backfill,
/// dual-write, dual-read), writes of attachments and tool calls also refresh
/// the message's legacy JSON arrays, and reads fall back to those arrays for
/// messages that have no table rows yet.
#include "chatstream/storage/database.hpp"
#include "chatstream/storage/types.hpp"

#include <optional>
#include <string>
#include <vector>

namespace chatstream::storage
{

/// True while messages still has the legacy array columns.
bool has_legacy_columns(database& db);

namespace users
{
/// Returns the id of the user with @p external_id, creating it if needed.
std::string ensure(database& db, std::string const& external_id,
                   std::optional<std::string> const& name = {});
std::optional<user_row> find_by_external_id(database& db, std::string const& external_id);
} // namespace users

namespace conversations
{
void insert(database& db, conversation_row const& row);
std::optional<conversation_row> get(database& db, std::string const& user_id,
                                    std::string const& id);
/// Most recently updated first; cursor is opaque.
page<conversation_row> list(database& db, std::string const& user_id, page_request const& req);
/// Deletes the conversation and (cascade) its messages, attachments, tool calls.
/// @return false when no such conversation for this user.
bool remove(database& db, std::string const& user_id, std::string const& id);
/// Bumps message_count / last_message_at / updated_at after a message insert.
void touch_for_new_message(database& db, std::string const& id, std::int64_t at);

/// The fields of updateConversation; absent = unchanged. model and
/// system_prompt can be cleared (engaged optional holding nullopt).
struct patch
{
    std::optional<std::string> title;
    std::optional<bool> pinned;
    std::optional<bool> archived;
    std::optional<bool> starred;
    std::optional<std::optional<std::string>> model;
    std::optional<std::optional<std::string>> system_prompt;
};
/// Applies @p p to the caller's conversation. @return the row after the
/// update, or nullopt when no such conversation for this user.
std::optional<conversation_row> update(database& db, std::string const& user_id,
                                       std::string const& id, patch const& p, std::int64_t now);
/// Recomputes message_count and last_message_at from the messages table.
void recount(database& db, std::string const& id, std::int64_t now);
/// Sets a generated title unless the conversation was renamed meanwhile
/// (title is no longer 'New Chat'). @return true when the title changed.
bool set_generated_title(database& db, std::string const& id, std::string const& title,
                         std::int64_t now);
/// A new conversation @p new_id holding copies of the messages of the
/// caller's message @p message_id's conversation up to and including it,
/// with their attachments, tool calls and sources (and legacy arrays while they
/// exist). @throws storage_error not_found (no such message for this user)
/// or conflict (the message is still generating).
conversation_row branch(database& db, std::string const& user_id, std::string const& message_id,
                        std::string const& new_id, std::int64_t now);
} // namespace conversations

namespace messages
{
void insert(database& db, message_row const& row);
std::optional<message_row> get(database& db, std::string const& user_id, std::string const& id);
/// Not scoped to a user: for server-internal readers that check the owner
/// themselves (cross-node followers, streaming/cluster.cpp).
std::optional<message_row> get_unscoped(database& db, std::string const& id);
/// Oldest first, in (created_at, id) order.
page<message_row> list(database& db, std::string const& user_id, std::string const& conversation_id,
                       page_request const& req);
/// All complete-able history of a conversation (for provider context).
std::vector<message_row> history(database& db, std::string const& conversation_id);

/// pending -> generating; no-op when already terminal.
void mark_generating(database& db, std::string const& id, std::int64_t started_at);
/// Replaces the text flushed so far with @p partial_content (and drops
/// appended chunks); never touches a terminal message.
void flush_partial(database& db, std::string const& id, std::string const& partial_content,
                   std::optional<std::int64_t> first_token_at, std::int64_t now);
/// Live flush of a generating answer, append-only: stores @p text, the
/// bytes of the answer from @p byte_start on, as one chunk (issue 19), so a
/// long answer writes O(n) bytes in all. Idempotent per (id, byte_start);
/// never touches a terminal message. @p first_token_at, when set, is
/// recorded once (first flush) together with the `generating` status.
/// @return true when the chunk was stored.
bool append_partial(database& db, std::string const& id, std::int64_t byte_start,
                    std::string_view text, std::optional<std::int64_t> first_token_at,
                    std::int64_t now);
/// The same for the reasoning (docs/design.md §9): @p text is the reasoning from
/// @p byte_start on. @p thinking_started_at, when set, is recorded once.
bool append_partial_reasoning(database& db, std::string const& id, std::int64_t byte_start,
                              std::string_view text,
                              std::optional<std::int64_t> thinking_started_at, std::int64_t now);
/// Bytes [@p byte_start, @p byte_start + @p length) of a message's `content`
/// (or `reasoning` when @p reasoning), for a reader that streams a long
/// answer from its committed row in bounded pieces; the cut may fall inside
/// a code point. Empty when there is no such message or nothing there.
std::string read_bytes(database& db, std::string const& id, bool reasoning, std::int64_t byte_start,
                       std::int64_t length);
/// Deletes the appended chunks of a message, text and reasoning (they were
/// folded into content and reasoning).
void drop_chunks(database& db, std::string const& id);

struct completion
{
    std::string status; ///< complete | error | stopped | interrupted
    std::string content;
    std::optional<std::string> error;
    std::optional<std::string> finish_reason;
    std::optional<std::int64_t> input_tokens;
    std::optional<std::int64_t> output_tokens;
    std::optional<double> cost;
    std::optional<double> tokens_per_second;
    std::optional<std::int64_t> first_token_at;
    std::int64_t completed_at = 0;
    std::optional<std::string> reasoning; ///< what was thought, kept whatever the status
    std::optional<std::int64_t> reasoning_tokens;
    std::optional<std::int64_t> thinking_started_at;
    std::optional<std::int64_t> thinking_completed_at;
};
/// Finalizes the message's tool calls and writes the terminal state, unless
/// the message is already terminal. @return true when this call made it terminal.
bool finish(database& db, std::string const& id, completion const& c);

/// Recovery of one message whose generation died with its process: an
/// unfinished message becomes interrupted (partial_content promoted to
/// content), its partial tool calls finalized. @return false when it was
/// already terminal.
bool interrupt(database& db, std::string const& id, std::int64_t now);

/// Startup recovery: every pending/generating message becomes interrupted
/// (partial_content promoted to content), its partial tool calls finalized.
/// @return number of messages recovered.
std::size_t interrupt_unfinished(database& db, std::int64_t now);

/// Deletes the caller's message with its attachments and tool calls and
/// recounts the conversation. @return false when no such message for this user.
bool remove(database& db, std::string const& user_id, std::string const& id);
/// Deletes message @p from and every later message of its conversation (in
/// (created_at, id) order), recounting the conversation.
/// @return the ids deleted, oldest first.
std::vector<std::string> remove_from(database& db, message_row const& from, std::int64_t now);

/// One hit of `search`.
struct search_hit
{
    std::string message_id;
    std::string conversation_id;
    std::string conversation_title;
    std::string role;
    std::string content;
    std::int64_t created_at = 0;
};
/// The user's finished messages (never @p exclude_id) whose content holds
/// @p phrase anywhere, wildcards in it taken literally, case-insensitive on
/// both dialects (SQLite's LIKE folds ASCII; PostgreSQL uses ILIKE, which
/// folds by the database's locale). Newest first, at most @p limit.
std::vector<search_hit> search(database& db, std::string const& user_id,
                               std::string const& exclude_id, std::string_view phrase,
                               std::int64_t limit);
} // namespace messages

namespace tool_calls
{
/// Insert or update keyed by (message_id, tool_call_id). Once set,
/// tool_name and text_position never move; args and result are replaced only
/// by non-empty values; is_partial follows the caller.
void upsert(database& db, tool_call_row const& row);
/// Marks every tool call of the message final; a call that never got a
/// result gets `{"success":false,"error":<reason>}` so none stays "executing".
void finalize(database& db, std::string const& message_id, std::string const& reason);

/// The UI shape of docs/design.md §6 getToolCalls.
struct ui_tool_call
{
    std::string id;
    std::string name;
    std::string arguments;             ///< JSON text
    std::optional<std::string> result; ///< JSON text
    std::int64_t timestamp = 0;
    std::optional<std::int64_t> text_position;
    bool is_partial = false;
};
/// Tool calls of a message the caller owns, by (text_position, timestamp).
std::vector<ui_tool_call> list_for_message(database& db, std::string const& user_id,
                                           std::string const& message_id, bool include_partial);
std::vector<tool_call_row> rows_for_message(database& db, std::string const& message_id);
} // namespace tool_calls

namespace attachments
{
void insert(database& db, attachment_row const& row);
/// Attachments of a message the caller owns, in position order.
std::vector<attachment_row> list_for_message(database& db, std::string const& user_id,
                                             std::string const& message_id);
} // namespace attachments

} // namespace chatstream::storage
