#include "detail/dual_write.hpp"

#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/repositories.hpp"

namespace chatstream::storage
{

bool has_legacy_columns(database& db)
{
    return db.has_column("messages", "tool_calls");
}

namespace detail
{

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

} // namespace detail

} // namespace chatstream::storage
