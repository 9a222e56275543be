#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/legacy.hpp"

#include <algorithm>
#include <charconv>

namespace chatstream::storage
{
namespace
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

constexpr char const* conversation_columns =
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

constexpr char const* tool_call_columns =
    "id, message_id, conversation_id, user_id, tool_call_id, tool_name, args, result, "
    "text_position, is_partial, timestamp, created_at";

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

constexpr char const* attachment_columns =
    "id, message_id, conversation_id, user_id, position, type, name, storage_id, mime_type, "
    "size, metadata, created_at";

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

// Dual-write: rebuild the legacy arrays of one message from its table rows,
// in the exact legacy shape (arguments/result as JSON *strings*), '[]' when
// there are none. Same keys in the same order on both backends; PostgreSQL's
// json_build_object/json_agg put a space around ':' and after ',', which
// every JSON reader (the legacy clients, verify) ignores.
void refresh_legacy_tool_calls(database& db, std::string const& message_id)
{
    auto& q = db.prepare(db.is_postgres() ? R"sql(
UPDATE messages SET
  tool_calls = coalesce((SELECT json_agg(json_build_object('id', tool_call_id, 'name', tool_name,
                             'arguments', args, 'result', result, 'timestamp', timestamp,
                             'textPosition', text_position) ORDER BY created_at, tool_call_id)
        FROM tool_calls WHERE message_id = ?1 AND is_partial = 0)::text, '[]'),
  partial_tool_calls = coalesce((SELECT json_agg(json_build_object('id', tool_call_id, 'name', tool_name,
                             'arguments', args, 'result', result, 'timestamp', timestamp,
                             'textPosition', text_position) ORDER BY created_at, tool_call_id)
        FROM tool_calls WHERE message_id = ?1 AND is_partial = 1)::text, '[]')
WHERE id = ?1)sql"
                                          : R"sql(
UPDATE messages SET
  tool_calls = (SELECT json_group_array(json(j)) FROM (
      SELECT json_object('id', tool_call_id, 'name', tool_name, 'arguments', args,
                         'result', result, 'timestamp', timestamp, 'textPosition', text_position) AS j
        FROM tool_calls WHERE message_id = ?1 AND is_partial = 0 ORDER BY created_at, tool_call_id)),
  partial_tool_calls = (SELECT json_group_array(json(j)) FROM (
      SELECT json_object('id', tool_call_id, 'name', tool_name, 'arguments', args,
                         'result', result, 'timestamp', timestamp, 'textPosition', text_position) AS j
        FROM tool_calls WHERE message_id = ?1 AND is_partial = 1 ORDER BY created_at, tool_call_id))
WHERE id = ?1)sql");
    q.bind(1, message_id);
    q.exec();
}

void refresh_legacy_attachments(database& db, std::string const& message_id)
{
    auto& q = db.prepare(db.is_postgres() ? R"sql(
UPDATE messages SET attachments = coalesce((SELECT json_agg(json_build_object('type', type, 'name', name,
        'storageId', storage_id, 'mimeType', mime_type, 'size', size, 'metadata', metadata::json)
        ORDER BY position) FROM attachments WHERE message_id = ?1)::text, '[]')
WHERE id = ?1)sql"
                                          : R"sql(
UPDATE messages SET attachments = (SELECT json_group_array(json(j)) FROM (
    SELECT json_object('type', type, 'name', name, 'storageId', storage_id, 'mimeType', mime_type,
                       'size', size, 'metadata', json(metadata)) AS j
      FROM attachments WHERE message_id = ?1 ORDER BY position))
WHERE id = ?1)sql");
    q.bind(1, message_id);
    q.exec();
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

// Fallback read for a message not yet backfilled by migration 001.
std::optional<legacy::rows> legacy_rows_for(database& db, std::string const& message_id)
{
    if (!has_legacy_columns(db))
        return std::nullopt;
    auto& q = db.prepare("SELECT conversation_id, user_id, created_at, attachments, tool_calls, "
                         "partial_tool_calls FROM messages WHERE id = ?");
    q.bind(1, message_id);
    if (!q.executeStep())
        return std::nullopt;
    legacy::message_context ctx{message_id, q.getColumn(0).getString(), q.getColumn(1).getString(),
                                q.getColumn(2).getInt64()};
    legacy::arrays in{opt_text(q.getColumn(3)), opt_text(q.getColumn(4)), opt_text(q.getColumn(5))};
    q.reset();
    auto converted = legacy::convert(ctx, in);
    if (auto* rows = std::get_if<legacy::rows>(&converted))
        return std::move(*rows);
    return std::nullopt; // quarantined by 001: nothing trustworthy to show
}

} // namespace

bool has_legacy_columns(database& db)
{
    return db.has_column("messages", "tool_calls");
}

//------------------------------------------------------------------------------

std::string users::ensure(database& db, std::string const& external_id,
                          std::optional<std::string> const& name)
{
    if (auto existing = find_by_external_id(db, external_id))
        return existing->id;
    auto& q = db.prepare("INSERT INTO users(id, external_id, name, created_at) VALUES(?,?,?,?) "
                         "ON CONFLICT(external_id) DO NOTHING");
    auto id = core::new_id();
    q.bind(1, id);
    q.bind(2, external_id);
    bind_opt(q, 3, name ? name : std::optional<std::string>(external_id));
    q.bind(4, core::now_ms());
    q.exec();
    return find_by_external_id(db, external_id).value().id;
}

std::optional<user_row> users::find_by_external_id(database& db, std::string const& external_id)
{
    auto& q =
        db.prepare("SELECT id, external_id, name, created_at FROM users WHERE external_id = ?");
    q.bind(1, external_id);
    if (!q.executeStep())
        return std::nullopt;
    user_row r{q.getColumn(0).getString(), opt_text(q.getColumn(1)), opt_text(q.getColumn(2)),
               q.getColumn(3).getInt64()};
    q.reset();
    return r;
}

//------------------------------------------------------------------------------

void conversations::insert(database& db, conversation_row const& r)
{
    auto& q = db.prepare(
        "INSERT INTO conversations(id, user_id, title, model, pinned, archived, starred, "
        "message_count, system_prompt, last_message_at, created_at, updated_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, r.id);
    q.bind(2, r.user_id);
    q.bind(3, r.title);
    bind_opt(q, 4, r.model);
    q.bind(5, r.pinned ? 1 : 0);
    q.bind(6, r.archived ? 1 : 0);
    q.bind(7, r.starred ? 1 : 0);
    q.bind(8, r.message_count);
    bind_opt(q, 9, r.system_prompt);
    bind_opt(q, 10, r.last_message_at);
    q.bind(11, r.created_at);
    q.bind(12, r.updated_at);
    q.exec();
}

std::optional<conversation_row> conversations::get(database& db, std::string const& user_id,
                                                   std::string const& id)
{
    auto& q = db.prepare(std::string("SELECT ") + conversation_columns +
                         " FROM conversations WHERE id = ? AND user_id = ?");
    q.bind(1, id);
    q.bind(2, user_id);
    if (!q.executeStep())
        return std::nullopt;
    auto r = read_conversation(q);
    q.reset();
    return r;
}

page<conversation_row> conversations::list(database& db, std::string const& user_id,
                                           page_request const& req)
{
    page<conversation_row> out;
    auto const limit = std::clamp<std::size_t>(req.limit, 1, 500);
    // The first page has its own statement instead of a sentinel id greater
    // than every id: that would be a byte like 0xff, which PostgreSQL refuses
    // as text (and which sorts by collation there, not by byte).
    std::optional<std::pair<std::int64_t, std::string>> after;
    if (req.cursor)
        after = decode_cursor(*req.cursor);
    std::string const select =
        std::string("SELECT ") + conversation_columns + " FROM conversations WHERE user_id = ?1";
    std::string const order = " ORDER BY updated_at DESC, id DESC LIMIT ?2";
    auto& q =
        db.prepare(after ? select + " AND (updated_at, id) < (?3, ?4)" + order : select + order);
    q.bind(1, user_id);
    q.bind(2, static_cast<std::int64_t>(limit + 1));
    if (after)
    {
        q.bind(3, after->first);
        q.bind(4, after->second);
    }
    while (q.executeStep())
        out.rows.push_back(read_conversation(q));
    q.reset();
    if (out.rows.size() > limit)
    {
        out.rows.pop_back();
        out.next_cursor = encode_cursor(out.rows.back().updated_at, out.rows.back().id);
    }
    return out;
}

bool conversations::remove(database& db, std::string const& user_id, std::string const& id)
{
    // Legacy databases keep their original messages FK (no cascade) until
    // cleanup rebuilds the table, so delete children explicitly; on a new
    // schema this is what the cascade would do anyway.
    auto& own = db.prepare("SELECT 1 FROM conversations WHERE id = ? AND user_id = ?");
    own.bind(1, id);
    own.bind(2, user_id);
    bool const found = own.executeStep();
    own.reset();
    if (!found)
        return false;
    auto& m = db.prepare("DELETE FROM messages WHERE conversation_id = ?");
    m.bind(1, id);
    m.exec();
    auto& c = db.prepare("DELETE FROM conversations WHERE id = ? AND user_id = ?");
    c.bind(1, id);
    c.bind(2, user_id);
    return c.exec() > 0;
}

void conversations::touch_for_new_message(database& db, std::string const& id, std::int64_t at)
{
    auto& q = db.prepare("UPDATE conversations SET message_count = message_count + 1, "
                         "last_message_at = ?2, updated_at = ?2 WHERE id = ?1");
    q.bind(1, id);
    q.bind(2, at);
    q.exec();
}

//------------------------------------------------------------------------------

void messages::insert(database& db, message_row const& r)
{
    auto& q = db.prepare(
        "INSERT INTO messages(id, conversation_id, user_id, role, content, partial_content, "
        "status, "
        "model, error, finish_reason, input_tokens, output_tokens, cost, tokens_per_second, "
        "first_token_at, generation_started_at, generation_completed_at, created_at, updated_at, "
        "reasoning, partial_reasoning, reasoning_tokens, thinking_started_at, "
        "thinking_completed_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, r.id);
    q.bind(2, r.conversation_id);
    q.bind(3, r.user_id);
    q.bind(4, r.role);
    q.bind(5, r.content);
    bind_opt(q, 6, r.partial_content);
    q.bind(7, r.status);
    bind_opt(q, 8, r.model);
    bind_opt(q, 9, r.error);
    bind_opt(q, 10, r.finish_reason);
    bind_opt(q, 11, r.input_tokens);
    bind_opt(q, 12, r.output_tokens);
    bind_opt(q, 13, r.cost);
    bind_opt(q, 14, r.tokens_per_second);
    bind_opt(q, 15, r.first_token_at);
    bind_opt(q, 16, r.generation_started_at);
    bind_opt(q, 17, r.generation_completed_at);
    q.bind(18, r.created_at);
    q.bind(19, r.updated_at);
    bind_opt(q, 20, r.reasoning);
    bind_opt(q, 21, r.partial_reasoning);
    bind_opt(q, 22, r.reasoning_tokens);
    bind_opt(q, 23, r.thinking_started_at);
    bind_opt(q, 24, r.thinking_completed_at);
    q.exec();
    conversations::touch_for_new_message(db, r.conversation_id, r.created_at);
}

std::optional<message_row> messages::get(database& db, std::string const& user_id,
                                         std::string const& id)
{
    auto& q =
        db.prepare("SELECT " + message_columns(db) + " FROM messages WHERE id = ? AND user_id = ?");
    q.bind(1, id);
    q.bind(2, user_id);
    if (!q.executeStep())
        return std::nullopt;
    auto r = read_message(q);
    q.reset();
    return r;
}

std::optional<message_row> messages::get_unscoped(database& db, std::string const& id)
{
    auto& q = db.prepare("SELECT " + message_columns(db) + " FROM messages WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep())
        return std::nullopt;
    auto r = read_message(q);
    q.reset();
    return r;
}

page<message_row> messages::list(database& db, std::string const& user_id,
                                 std::string const& conversation_id, page_request const& req)
{
    page<message_row> out;
    auto const limit = std::clamp<std::size_t>(req.limit, 1, 500);
    std::int64_t key = INT64_MIN;
    std::string after_id;
    if (req.cursor)
        std::tie(key, after_id) = decode_cursor(*req.cursor);
    auto& q = db.prepare("SELECT " + message_columns(db) +
                         " FROM messages WHERE conversation_id = ? AND user_id = ?"
                         " AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?");
    q.bind(1, conversation_id);
    q.bind(2, user_id);
    q.bind(3, key);
    q.bind(4, after_id);
    q.bind(5, static_cast<std::int64_t>(limit + 1));
    while (q.executeStep())
        out.rows.push_back(read_message(q));
    q.reset();
    if (out.rows.size() > limit)
    {
        out.rows.pop_back();
        out.next_cursor = encode_cursor(out.rows.back().created_at, out.rows.back().id);
    }
    return out;
}

std::vector<message_row> messages::history(database& db, std::string const& conversation_id)
{
    std::vector<message_row> out;
    auto& q = db.prepare("SELECT " + message_columns(db) +
                         " FROM messages WHERE conversation_id = ? ORDER BY created_at, id");
    q.bind(1, conversation_id);
    while (q.executeStep())
        out.push_back(read_message(q));
    q.reset();
    return out;
}

void messages::mark_generating(database& db, std::string const& id, std::int64_t started_at)
{
    auto& q = db.prepare("UPDATE messages SET status = 'generating', generation_started_at = ?2, "
                         "updated_at = ?2 WHERE id = ?1 AND status = 'pending'");
    q.bind(1, id);
    q.bind(2, started_at);
    q.exec();
}

void messages::flush_partial(database& db, std::string const& id,
                             std::string const& partial_content,
                             std::optional<std::int64_t> first_token_at, std::int64_t now)
{
    // The status guard is what keeps a late flush from resurrecting a
    // message that was already stopped, failed or completed.
    auto& q = db.prepare(
        "UPDATE messages SET partial_content = ?2, first_token_at = coalesce(first_token_at, ?3), "
        "status = 'generating', updated_at = ?4 WHERE id = ?1 AND status IN "
        "('pending','generating')");
    q.bind(1, id);
    q.bind(2, partial_content);
    bind_opt(q, 3, first_token_at);
    q.bind(4, now);
    if (q.exec() > 0)
        drop_chunks(db, id); // the whole text replaces what was appended
}

namespace
{

// One live flush of one channel: the new bytes as a chunk keyed by where
// they start (a flush that runs twice stores them once), and on the first
// flush the moment the channel began, with the `generating` status. Never
// touches a terminal message.
bool append_chunk(database& db, std::string const& id, partial_channel ch, std::int64_t byte_start,
                  std::string_view text, std::optional<std::int64_t> first_at, std::int64_t now)
{
    bool const content = ch == partial_channel::content;
    if (first_at)
    {
        auto& u = db.prepare(
            content
                ? "UPDATE messages SET first_token_at = ?2, status = 'generating', updated_at = ?3 "
                  "WHERE id = ?1 AND status IN ('pending','generating') AND first_token_at IS NULL"
                : "UPDATE messages SET thinking_started_at = ?2, status = 'generating', "
                  "updated_at = ?3 WHERE id = ?1 AND status IN ('pending','generating') "
                  "AND thinking_started_at IS NULL");
        u.bind(1, id);
        u.bind(2, *first_at);
        u.bind(3, now);
        u.exec();
    }
    static std::string const insert[2] = {
        "INSERT INTO message_chunks(message_id, byte_start, text) SELECT ?1, CAST(?2 AS BIGINT), "
        "?3 "
        "WHERE EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND status IN ('pending','generating')) "
        "ON CONFLICT DO NOTHING",
        "INSERT INTO reasoning_chunks(message_id, byte_start, text) SELECT ?1, CAST(?2 AS BIGINT), "
        "?3 "
        "WHERE EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND status IN ('pending','generating')) "
        "ON CONFLICT DO NOTHING"};
    auto& q = db.prepare(insert[content ? 0 : 1]);
    q.bind(1, id);
    q.bind(2, byte_start);
    q.bind(3, std::string(text));
    return q.exec() > 0;
}

} // namespace

bool messages::append_partial(database& db, std::string const& id, std::int64_t byte_start,
                              std::string_view text, std::optional<std::int64_t> first_token_at,
                              std::int64_t now)
{
    return append_chunk(db, id, partial_channel::content, byte_start, text, first_token_at, now);
}

bool messages::append_partial_reasoning(database& db, std::string const& id,
                                        std::int64_t byte_start, std::string_view text,
                                        std::optional<std::int64_t> thinking_started_at,
                                        std::int64_t now)
{
    return append_chunk(db, id, partial_channel::reasoning, byte_start, text, thinking_started_at,
                        now);
}

std::string messages::read_bytes(database& db, std::string const& id, bool reasoning,
                                 std::int64_t byte_start, std::int64_t length)
{
    // Bytes, not characters: SQLite's substr counts bytes on a BLOB;
    // PostgreSQL's on bytea, which comes back hex-encoded (a cut inside a
    // code point is not valid text on the wire).
    static char const* const sql[2][2] = {
        {"SELECT substr(CAST(content AS BLOB), ?2 + 1, ?3) FROM messages WHERE id = ?1",
         "SELECT substr(CAST(reasoning AS BLOB), ?2 + 1, ?3) FROM messages WHERE id = ?1"},
        {"SELECT encode(substring(convert_to(content, 'UTF8') FROM CAST(?2 AS INTEGER) + 1 "
         "FOR CAST(?3 AS INTEGER)), 'hex') FROM messages WHERE id = ?1",
         "SELECT encode(substring(convert_to(reasoning, 'UTF8') FROM CAST(?2 AS INTEGER) + 1 "
         "FOR CAST(?3 AS INTEGER)), 'hex') FROM messages WHERE id = ?1"}};
    bool const pg = db.is_postgres();
    auto& q = db.prepare(sql[pg ? 1 : 0][reasoning ? 1 : 0]);
    q.bind(1, id);
    q.bind(2, byte_start);
    q.bind(3, length);
    std::string out;
    if (q.executeStep() && !q.getColumn(0).isNull())
        out = q.getColumn(0).getString();
    q.reset();
    if (!pg)
        return out;
    std::string bytes;
    bytes.reserve(out.size() / 2);
    auto const nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < out.size(); i += 2)
        bytes += static_cast<char>(nibble(out[i]) << 4 | nibble(out[i + 1]));
    return bytes;
}

void messages::drop_chunks(database& db, std::string const& id)
{
    for (auto const* sql : {"DELETE FROM message_chunks WHERE message_id = ?",
                            "DELETE FROM reasoning_chunks WHERE message_id = ?"})
    {
        auto& q = db.prepare(sql);
        q.bind(1, id);
        q.exec();
    }
}

bool messages::finish(database& db, std::string const& id, completion const& c)
{
    if (!is_terminal_status(c.status))
        throw storage_error(errc::invalid_argument, "finish needs a terminal status");
    auto& q = db.prepare(
        "UPDATE messages SET status = ?2, content = ?3, partial_content = NULL, error = ?4, "
        "finish_reason = ?5, input_tokens = ?6, output_tokens = ?7, cost = ?8, "
        "tokens_per_second = ?9, first_token_at = coalesce(first_token_at, ?10), "
        "generation_completed_at = ?11, updated_at = ?11, reasoning = coalesce(?12, reasoning), "
        "partial_reasoning = NULL, reasoning_tokens = coalesce(?13, reasoning_tokens), "
        "thinking_started_at = coalesce(thinking_started_at, ?14), "
        "thinking_completed_at = coalesce(?15, thinking_completed_at) "
        "WHERE id = ?1 AND status IN ('pending','generating')");
    q.bind(1, id);
    q.bind(2, c.status);
    q.bind(3, c.content);
    bind_opt(q, 4, c.error);
    bind_opt(q, 5, c.finish_reason);
    bind_opt(q, 6, c.input_tokens);
    bind_opt(q, 7, c.output_tokens);
    bind_opt(q, 8, c.cost);
    bind_opt(q, 9, c.tokens_per_second);
    bind_opt(q, 10, c.first_token_at);
    q.bind(11, c.completed_at);
    bind_opt(q, 12, c.reasoning);
    bind_opt(q, 13, c.reasoning_tokens);
    bind_opt(q, 14, c.thinking_started_at);
    bind_opt(q, 15, c.thinking_completed_at);
    bool const changed = q.exec() > 0;
    if (changed)
        drop_chunks(db, id);
    if (changed)
        tool_calls::finalize(db, id,
                             c.status == status::complete ? "tool call did not complete"
                                                          : "generation " + c.status);
    return changed;
}

bool messages::interrupt(database& db, std::string const& id, std::int64_t now)
{
    // What was thought is kept like what was said.
    auto const promote = [](dialect d)
    {
        return std::string("UPDATE messages SET status = 'interrupted', content = coalesce(") +
               partial_text_sql(d) + ", content), reasoning = coalesce(" +
               partial_text_sql(d, partial_channel::reasoning) + ", reasoning), ";
    };
    static std::string const promotes[2] = {promote(dialect::sqlite), promote(dialect::postgres)};
    auto& u = db.prepare(
        promotes[db.is_postgres() ? 1 : 0] +
        "partial_content = NULL, partial_reasoning = NULL, finish_reason = 'interrupted', "
        "error = 'server restarted during generation', generation_completed_at = ?2, "
        "updated_at = ?2 WHERE id = ?1 AND status IN ('pending','generating')");
    u.bind(1, id);
    u.bind(2, now);
    if (u.exec() == 0)
        return false;
    drop_chunks(db, id);
    tool_calls::finalize(db, id, "generation interrupted");
    return true;
}

std::size_t messages::interrupt_unfinished(database& db, std::int64_t now)
{
    std::vector<std::string> ids;
    {
        auto& q = db.prepare("SELECT id FROM messages WHERE status IN ('pending','generating')");
        while (q.executeStep())
            ids.push_back(q.getColumn(0).getString());
        q.reset();
    }
    std::size_t n = 0;
    for (auto const& id : ids)
        n += interrupt(db, id, now) ? 1 : 0;
    return n;
}

bool messages::remove(database& db, std::string const& user_id, std::string const& id)
{
    auto& q =
        db.prepare("DELETE FROM messages WHERE id = ? AND user_id = ? RETURNING conversation_id");
    q.bind(1, id);
    q.bind(2, user_id);
    if (!q.executeStep())
        return false;
    auto conversation_id = q.getColumn(0).getString();
    while (q.executeStep())
    {
    }
    q.reset();
    // Explicit child deletes for legacy databases without the cascade.
    auto& t = db.prepare("DELETE FROM tool_calls WHERE message_id = ?");
    t.bind(1, id);
    t.exec();
    auto& a = db.prepare("DELETE FROM attachments WHERE message_id = ?");
    a.bind(1, id);
    a.exec();
    conversations::recount(db, conversation_id, core::now_ms());
    return true;
}

//------------------------------------------------------------------------------

void tool_calls::upsert(database& db, tool_call_row const& r)
{
    auto& q = db.prepare(
        "INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, tool_name, "
        "args, result, text_position, is_partial, timestamp, created_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(message_id, tool_call_id) DO UPDATE SET "
        "  args = CASE WHEN excluded.args IN ('', '{}') THEN tool_calls.args ELSE excluded.args "
        "END, "
        "  result = coalesce(excluded.result, tool_calls.result), "
        "  text_position = coalesce(tool_calls.text_position, excluded.text_position), "
        "  is_partial = excluded.is_partial, "
        "  timestamp = excluded.timestamp");
    q.bind(1, r.id.empty() ? core::new_id() : r.id);
    q.bind(2, r.message_id);
    q.bind(3, r.conversation_id);
    q.bind(4, r.user_id);
    q.bind(5, r.tool_call_id);
    q.bind(6, r.tool_name);
    q.bind(7, r.args.empty() ? std::string("{}") : r.args);
    bind_opt(q, 8, r.result);
    bind_opt(q, 9, r.text_position);
    q.bind(10, r.is_partial ? 1 : 0);
    q.bind(11, r.timestamp);
    q.bind(12, r.created_at ? r.created_at : core::now_ms());
    q.exec();
    if (has_legacy_columns(db))
        refresh_legacy_tool_calls(db, r.message_id);
}

void tool_calls::finalize(database& db, std::string const& message_id, std::string const& reason)
{
    // The error result is built here, not with the engine's JSON functions,
    // so it is the same compact text on both backends.
    auto& q = db.prepare("UPDATE tool_calls SET is_partial = 0, result = coalesce(result, ?2) "
                         "WHERE message_id = ?1 AND (is_partial = 1 OR result IS NULL)");
    q.bind(1, message_id);
    q.bind(2, R"({"success":false,"error":)" + core::json_string(reason) + "}");
    if (q.exec() > 0 && has_legacy_columns(db))
        refresh_legacy_tool_calls(db, message_id);
}

std::vector<tool_call_row> tool_calls::rows_for_message(database& db, std::string const& message_id)
{
    std::vector<tool_call_row> out;
    auto& q = db.prepare(std::string("SELECT ") + tool_call_columns +
                         " FROM tool_calls WHERE message_id = ? ORDER BY created_at, tool_call_id");
    q.bind(1, message_id);
    while (q.executeStep())
        out.push_back(read_tool_call(q));
    q.reset();
    return out;
}

std::vector<tool_calls::ui_tool_call> tool_calls::list_for_message(database& db,
                                                                   std::string const& user_id,
                                                                   std::string const& message_id,
                                                                   bool include_partial)
{
    std::vector<ui_tool_call> out;
    if (!owns_message(db, user_id, message_id))
        return out;
    auto rows = rows_for_message(db, message_id);
    if (rows.empty())
        if (auto legacy_rows = legacy_rows_for(db, message_id))
            rows = std::move(legacy_rows->tool_calls);
    for (auto& r : rows)
    {
        if (r.is_partial && !include_partial)
            continue;
        out.push_back({std::move(r.tool_call_id), std::move(r.tool_name), std::move(r.args),
                       std::move(r.result), r.timestamp, r.text_position, r.is_partial});
    }
    return out;
}

//------------------------------------------------------------------------------

void attachments::insert(database& db, attachment_row const& r)
{
    auto& q = db.prepare(
        "INSERT INTO attachments(id, message_id, conversation_id, user_id, position, type, name, "
        "storage_id, mime_type, size, metadata, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(message_id, position) DO UPDATE SET type = excluded.type, name = "
        "excluded.name, "
        "storage_id = excluded.storage_id, mime_type = excluded.mime_type, size = excluded.size, "
        "metadata = excluded.metadata");
    q.bind(1, r.id.empty() ? core::new_id() : r.id);
    q.bind(2, r.message_id);
    q.bind(3, r.conversation_id);
    q.bind(4, r.user_id);
    q.bind(5, r.position);
    q.bind(6, r.type);
    q.bind(7, r.name);
    q.bind(8, r.storage_id);
    q.bind(9, r.mime_type);
    q.bind(10, r.size);
    bind_opt(q, 11, r.metadata);
    q.bind(12, r.created_at ? r.created_at : core::now_ms());
    q.exec();
    if (has_legacy_columns(db))
        refresh_legacy_attachments(db, r.message_id);
}

std::vector<attachment_row> attachments::list_for_message(database& db, std::string const& user_id,
                                                          std::string const& message_id)
{
    std::vector<attachment_row> out;
    if (!owns_message(db, user_id, message_id))
        return out;
    auto& q = db.prepare(std::string("SELECT ") + attachment_columns +
                         " FROM attachments WHERE message_id = ? ORDER BY position");
    q.bind(1, message_id);
    while (q.executeStep())
        out.push_back(read_attachment(q));
    q.reset();
    if (out.empty())
        if (auto legacy_rows = legacy_rows_for(db, message_id))
            out = std::move(legacy_rows->attachments);
    return out;
}

} // namespace chatstream::storage

namespace chatstream::storage::messages
{

namespace
{

// LIKE pattern matching @p phrase anywhere, with its wildcards taken literally.
std::string contains_pattern(std::string_view phrase)
{
    std::string p = "%";
    for (char c : phrase)
    {
        if (c == '%' || c == '_' || c == '\\')
            p.push_back('\\');
        p.push_back(c);
    }
    p.push_back('%');
    return p;
}

} // namespace

std::vector<search_hit> search(database& db, std::string const& user_id,
                               std::string const& exclude_id, std::string_view phrase,
                               std::int64_t limit)
{
    // Scoped twice to the caller (conversation and message owner), so a row
    // of another user can never come back even if the two ever disagreed.
    static constexpr char const* sqlite_sql =
        "SELECT m.id, m.conversation_id, c.title, m.role, m.content, m.created_at "
        "FROM conversations c JOIN messages m ON m.conversation_id = c.id "
        "WHERE c.user_id = ?1 AND m.user_id = ?1 AND m.status NOT IN ('pending','generating') "
        "AND m.id <> ?2 AND m.content LIKE ?3 ESCAPE '\\' "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?4";
    static constexpr char const* postgres_sql =
        "SELECT m.id, m.conversation_id, c.title, m.role, m.content, m.created_at "
        "FROM conversations c JOIN messages m ON m.conversation_id = c.id "
        "WHERE c.user_id = ?1 AND m.user_id = ?1 AND m.status NOT IN ('pending','generating') "
        "AND m.id <> ?2 AND m.content ILIKE ?3 ESCAPE '\\' "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?4";
    auto& q = db.prepare(db.dialect() == dialect::postgres ? postgres_sql : sqlite_sql);
    q.bind(1, user_id);
    q.bind(2, exclude_id);
    q.bind(3, contains_pattern(phrase));
    q.bind(4, limit);
    std::vector<search_hit> hits;
    while (q.executeStep())
        hits.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                        q.getColumn(2).getString(), q.getColumn(3).getString(),
                        q.getColumn(4).getString(), q.getColumn(5).getInt64()});
    q.reset();
    return hits;
}

} // namespace chatstream::storage::messages
