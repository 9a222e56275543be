#include "detail/rows.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/rows.hpp"

#include <charconv>

namespace chatstream::storage
{

namespace rows
{
// The row outlives the statement's exec(), so texts are bound in place
// (bind_ref, columns.hpp).

void bind(statement& s, int first, attachment_row const& r)
{
    s.bindNoCopy(first + 1, r.id);
    s.bindNoCopy(first + 2, r.message_id);
    s.bindNoCopy(first + 3, r.conversation_id);
    s.bindNoCopy(first + 4, r.user_id);
    s.bind(first + 5, r.position);
    s.bindNoCopy(first + 6, r.type);
    s.bindNoCopy(first + 7, r.name);
    s.bindNoCopy(first + 8, r.storage_id);
    s.bindNoCopy(first + 9, r.mime_type);
    s.bind(first + 10, r.size);
    bind_ref(s, first + 11, r.metadata);
    s.bind(first + 12, r.created_at);
}

void bind(statement& s, int first, tool_call_row const& r)
{
    s.bindNoCopy(first + 1, r.id);
    s.bindNoCopy(first + 2, r.message_id);
    s.bindNoCopy(first + 3, r.conversation_id);
    s.bindNoCopy(first + 4, r.user_id);
    s.bindNoCopy(first + 5, r.tool_call_id);
    s.bindNoCopy(first + 6, r.tool_name);
    s.bindNoCopy(first + 7, r.args);
    bind_ref(s, first + 8, r.result);
    bind_opt(s, first + 9, r.text_position);
    s.bind(first + 10, r.is_partial ? 1 : 0);
    s.bind(first + 11, r.timestamp);
    s.bind(first + 12, r.created_at);
}

tool_call_row read_tool_call(storage::statement& q)
{
    tool_call_row r;
    r.id = q.getColumn(0).getString();
    r.message_id = q.getColumn(1).getString();
    r.conversation_id = q.getColumn(2).getString();
    r.user_id = q.getColumn(3).getString();
    r.tool_call_id = q.getColumn(4).getString();
    r.tool_name = q.getColumn(5).getString();
    r.args = q.getColumn(6).getString();
    r.result = opt_text(q.getColumn(7));
    r.text_position = opt_int(q.getColumn(8));
    r.is_partial = q.getColumn(9).getInt() != 0;
    r.timestamp = q.getColumn(10).getInt64();
    r.created_at = q.getColumn(11).getInt64();
    return r;
}

attachment_row read_attachment(storage::statement& q)
{
    attachment_row r;
    r.id = q.getColumn(0).getString();
    r.message_id = q.getColumn(1).getString();
    r.conversation_id = q.getColumn(2).getString();
    r.user_id = q.getColumn(3).getString();
    r.position = q.getColumn(4).getInt64();
    r.type = q.getColumn(5).getString();
    r.name = q.getColumn(6).getString();
    r.storage_id = q.getColumn(7).getString();
    r.mime_type = q.getColumn(8).getString();
    r.size = q.getColumn(9).getInt64();
    r.metadata = opt_text(q.getColumn(10));
    r.created_at = q.getColumn(11).getInt64();
    return r;
}

} // namespace rows

namespace detail
{

// Keyset cursors are "<int>|<id>"; a malformed cursor is a client error.
// The id part must be text either backend can compare (valid UTF-8, no
// NUL): PostgreSQL would refuse anything else at bind time, and every id we
// hand out is such text, so both backends reject the same cursors here.
std::pair<std::int64_t, std::string> decode_cursor(std::string const& cursor)
{
    auto bar = cursor.find('|');
    std::int64_t key = 0;
    if (bar == std::string::npos)
        throw storage_error(errc::invalid_argument, "malformed cursor");
    auto const [end, ec] = std::from_chars(cursor.data(), cursor.data() + bar, key);
    auto const id = std::string_view(cursor).substr(bar + 1);
    if (ec != std::errc{} || end != cursor.data() + bar ||
        id.find('\0') != std::string_view::npos || !core::is_valid_utf8(id))
        throw storage_error(errc::invalid_argument, "malformed cursor");
    return {key, std::string(id)};
}

std::string encode_cursor(std::int64_t key, std::string const& id)
{
    return std::to_string(key) + "|" + id;
}

char const* const conversation_columns =
    "id, user_id, title, model, pinned, archived, starred, message_count, system_prompt, "
    "last_message_at, created_at, updated_at";

conversation_row read_conversation(storage::statement& q)
{
    conversation_row r;
    r.id = q.getColumn(0).getString();
    r.user_id = q.getColumn(1).getString();
    r.title = q.getColumn(2).getString();
    r.model = opt_text(q.getColumn(3));
    r.pinned = q.getColumn(4).getInt() != 0;
    r.archived = q.getColumn(5).getInt() != 0;
    r.starred = q.getColumn(6).getInt() != 0;
    r.message_count = q.getColumn(7).getInt64();
    r.system_prompt = opt_text(q.getColumn(8));
    r.last_message_at = opt_int(q.getColumn(9));
    r.created_at = q.getColumn(10).getInt64();
    r.updated_at = q.getColumn(11).getInt64();
    return r;
}

// The select list of a message_row. `partial_content` is what a generation
// flushed so far: the column (a whole-text flush) followed by the appended
// chunks in byte order (issue 19), so every reader sees one text.
std::string const& message_columns(database& db)
{
    auto const columns = [](dialect d)
    {
        return std::string("id, conversation_id, user_id, role, content, ") + partial_text_sql(d) +
               ", status, model, error, "
               "finish_reason, input_tokens, output_tokens, cost, tokens_per_second, "
               "first_token_at, "
               "generation_started_at, generation_completed_at, created_at, updated_at, "
               "reasoning, " +
               partial_text_sql(d, partial_channel::reasoning) +
               ", reasoning_tokens, thinking_started_at, thinking_completed_at";
    };
    static std::string const sqlite = columns(dialect::sqlite);
    static std::string const postgres = columns(dialect::postgres);
    return db.is_postgres() ? postgres : sqlite;
}

message_row read_message(storage::statement& q)
{
    message_row r;
    r.id = q.getColumn(0).getString();
    r.conversation_id = q.getColumn(1).getString();
    r.user_id = q.getColumn(2).getString();
    r.role = q.getColumn(3).getString();
    r.content = q.getColumn(4).getString();
    r.partial_content = opt_text(q.getColumn(5));
    r.status = q.getColumn(6).getString();
    r.model = opt_text(q.getColumn(7));
    r.error = opt_text(q.getColumn(8));
    r.finish_reason = opt_text(q.getColumn(9));
    r.input_tokens = opt_int(q.getColumn(10));
    r.output_tokens = opt_int(q.getColumn(11));
    r.cost = opt_real(q.getColumn(12));
    r.tokens_per_second = opt_real(q.getColumn(13));
    r.first_token_at = opt_int(q.getColumn(14));
    r.generation_started_at = opt_int(q.getColumn(15));
    r.generation_completed_at = opt_int(q.getColumn(16));
    r.created_at = q.getColumn(17).getInt64();
    r.updated_at = q.getColumn(18).getInt64();
    r.reasoning = opt_text(q.getColumn(19));
    r.partial_reasoning = opt_text(q.getColumn(20));
    r.reasoning_tokens = opt_int(q.getColumn(21));
    r.thinking_started_at = opt_int(q.getColumn(22));
    r.thinking_completed_at = opt_int(q.getColumn(23));
    return r;
}

bool owns_message(database& db, std::string const& user_id, std::string const& message_id)
{
    auto& q = db.prepare("SELECT 1 FROM messages WHERE id = ? AND user_id = ?");
    q.bind(1, message_id);
    q.bind(2, user_id);
    bool const found = q.executeStep();
    q.reset();
    return found;
}

} // namespace detail

} // namespace chatstream::storage
