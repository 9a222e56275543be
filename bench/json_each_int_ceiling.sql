-- Ceiling 2 of issue 21: the same json_each conversion into simpler tables:
-- integer keys (the rowid; the message is referenced by its rowid) and one
-- UNIQUE index per table, no foreign keys, no secondary indexes; one
-- transaction, in the sqlite3 shell (`sqlite3 DB < bench/json_each_int_ceiling.sql`).
-- The same columns as the real tables, so the same bytes are converted.
CREATE TABLE att_int(id INTEGER PRIMARY KEY, message_rowid INTEGER NOT NULL, conversation_id TEXT NOT NULL,
  user_id TEXT NOT NULL, position INTEGER NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL, storage_id TEXT NOT NULL,
  mime_type TEXT NOT NULL, size INTEGER NOT NULL, metadata TEXT, created_at INTEGER NOT NULL,
  UNIQUE(message_rowid, position));
CREATE TABLE tc_int(id INTEGER PRIMARY KEY, message_rowid INTEGER NOT NULL, conversation_id TEXT NOT NULL,
  user_id TEXT NOT NULL, tool_call_id TEXT NOT NULL, tool_name TEXT NOT NULL, args TEXT NOT NULL, result TEXT,
  text_position INTEGER, is_partial INTEGER NOT NULL, timestamp INTEGER NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE(message_rowid, tool_call_id));
BEGIN;
INSERT INTO att_int(message_rowid, conversation_id, user_id, position, type, name, storage_id, mime_type,
                    size, metadata, created_at)
SELECT m.rowid, m.conversation_id, m.user_id, j.key, j.value ->> 'type', j.value ->> 'name',
       j.value ->> 'storageId', j.value ->> 'mimeType', j.value ->> 'size', json(j.value -> 'metadata'), m.created_at
  FROM messages m, json_each(iif(json_valid(m.attachments), iif(json_type(m.attachments) = 'array', m.attachments, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.attachments IS NOT NULL AND m.attachments NOT IN ('', '[]')
   AND j.value ->> 'type' IN ('image', 'file', 'audio')
ON CONFLICT DO NOTHING;

INSERT INTO tc_int(message_rowid, conversation_id, user_id, tool_call_id, tool_name, args, result,
                   text_position, is_partial, timestamp, created_at)
SELECT m.rowid, m.conversation_id, m.user_id, j.value ->> 'id', j.value ->> 'name',
       json(coalesce(nullif(j.value ->> 'arguments', ''), '{}')), json(nullif(j.value ->> 'result', '')),
       j.value ->> 'textPosition', 0, j.value ->> 'timestamp', m.created_at
  FROM messages m, json_each(iif(json_valid(m.tool_calls), iif(json_type(m.tool_calls) = 'array', m.tool_calls, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.tool_calls IS NOT NULL AND m.tool_calls NOT IN ('', '[]')
   AND json_valid(coalesce(nullif(j.value ->> 'arguments', ''), '{}'))
   AND (nullif(j.value ->> 'result', '') IS NULL OR json_valid(j.value ->> 'result'))
ON CONFLICT(message_rowid, tool_call_id) DO UPDATE SET args = excluded.args, result = excluded.result,
   text_position = excluded.text_position, timestamp = excluded.timestamp;

INSERT INTO tc_int(message_rowid, conversation_id, user_id, tool_call_id, tool_name, args, result,
                   text_position, is_partial, timestamp, created_at)
SELECT m.rowid, m.conversation_id, m.user_id, j.value ->> 'id', j.value ->> 'name',
       json(coalesce(nullif(j.value ->> 'arguments', ''), '{}')), json(nullif(j.value ->> 'result', '')),
       j.value ->> 'textPosition', 1, j.value ->> 'timestamp', m.created_at
  FROM messages m, json_each(iif(json_valid(m.partial_tool_calls), iif(json_type(m.partial_tool_calls) = 'array', m.partial_tool_calls, '[]'), '[]')) j
 WHERE j.type = 'object' AND m.partial_tool_calls IS NOT NULL AND m.partial_tool_calls NOT IN ('', '[]')
   AND json_valid(coalesce(nullif(j.value ->> 'arguments', ''), '{}'))
   AND (nullif(j.value ->> 'result', '') IS NULL OR json_valid(j.value ->> 'result'))
ON CONFLICT(message_rowid, tool_call_id) DO UPDATE SET args = excluded.args, result = excluded.result,
   text_position = excluded.text_position, timestamp = excluded.timestamp WHERE tc_int.is_partial = 1;
COMMIT;
