-- Append-only persistence of a generating answer's text (issue 19). Each
-- flush inserts only the bytes produced since the previous one, keyed by
-- where they start in the text, so a long answer writes O(n) bytes instead
-- of rewriting partial_content every flush (O(n^2)). Readers see
-- partial_content || the chunks in byte order (storage/messages.cpp); the
-- final commit, restart recovery and regenerate fold them into content and
-- delete them, so a row exists only while its message is pending/generating.
CREATE TABLE IF NOT EXISTS message_chunks(
  message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  byte_start INTEGER NOT NULL,
  text       TEXT NOT NULL,
  PRIMARY KEY(message_id, byte_start)
) WITHOUT ROWID;
