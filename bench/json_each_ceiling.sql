-- Ceiling 1 of issue 21: 001's conversion as pure SQL (json_each) into the
-- same schema (text primary keys, every index maintained row by row), one
-- transaction, in the sqlite3 shell: `sqlite3 DB < bench/json_each_ceiling.sql`
-- on a legacy database with the schema applied. The same statements as
-- bench/migration_bench.cpp's in-process ceiling; the rules of 001 where SQL
-- can express them (last occurrence wins, partial calls never replace final
-- ones, {} for empty arguments, malformed JSON skipped).
BEGIN;
INSERT INTO attachments(id, message_id, conversation_id, user_id, position, type, name, storage_id, mime_type,
                        size, metadata, created_at)
SELECT m.id || ':att:' || j.key, m.id, m.conversation_id, m.user_id, j.key, j.value ->> 'type', j.value ->> 'name',
       j.value ->> 'storageId', j.value ->> 'mimeType', j.value ->> 'size', json(j.value -> 'metadata'), m.created_at
  FROM messages m, json_each(iif(json_valid(m.attachments), iif(json_type(m.attachments) = 'array', m.attachments, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.attachments IS NOT NULL AND m.attachments NOT IN ('', '[]')
   AND j.value ->> 'type' IN ('image', 'file', 'audio')
ON CONFLICT DO NOTHING;

INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, tool_name, args, result,
                       text_position, is_partial, timestamp, created_at)
SELECT m.id || ':tc:' || (j.value ->> 'id'), m.id, m.conversation_id, m.user_id, j.value ->> 'id', j.value ->> 'name',
       json(coalesce(nullif(j.value ->> 'arguments', ''), '{}')), json(nullif(j.value ->> 'result', '')),
       j.value ->> 'textPosition', 0, j.value ->> 'timestamp', m.created_at
  FROM messages m, json_each(iif(json_valid(m.tool_calls), iif(json_type(m.tool_calls) = 'array', m.tool_calls, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.tool_calls IS NOT NULL AND m.tool_calls NOT IN ('', '[]')
   AND json_valid(coalesce(nullif(j.value ->> 'arguments', ''), '{}'))
   AND (nullif(j.value ->> 'result', '') IS NULL OR json_valid(j.value ->> 'result'))
ON CONFLICT(message_id, tool_call_id) DO UPDATE SET args = excluded.args, result = excluded.result,
   text_position = excluded.text_position, timestamp = excluded.timestamp;

INSERT INTO tool_calls(id, message_id, conversation_id, user_id, tool_call_id, tool_name, args, result,
                       text_position, is_partial, timestamp, created_at)
SELECT m.id || ':tc:' || (j.value ->> 'id'), m.id, m.conversation_id, m.user_id, j.value ->> 'id', j.value ->> 'name',
       json(coalesce(nullif(j.value ->> 'arguments', ''), '{}')), json(nullif(j.value ->> 'result', '')),
       j.value ->> 'textPosition', 1, j.value ->> 'timestamp', m.created_at
  FROM messages m, json_each(iif(json_valid(m.partial_tool_calls), iif(json_type(m.partial_tool_calls) = 'array', m.partial_tool_calls, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.partial_tool_calls IS NOT NULL AND m.partial_tool_calls NOT IN ('', '[]')
   AND json_valid(coalesce(nullif(j.value ->> 'arguments', ''), '{}'))
   AND (nullif(j.value ->> 'result', '') IS NULL OR json_valid(j.value ->> 'result'))
ON CONFLICT(message_id, tool_call_id) DO UPDATE SET args = excluded.args, result = excluded.result,
   text_position = excluded.text_position, timestamp = excluded.timestamp WHERE tool_calls.is_partial = 1;
COMMIT;
