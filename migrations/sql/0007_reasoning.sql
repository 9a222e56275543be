-- Reasoning and its timing (docs/design.md §9, issue 22). A legacy database may
-- already hold some of these columns (the seed's messages had `reasoning`
-- and `partial_reasoning`): `ADD COLUMN IF NOT EXISTS`, which SQLite lacks,
-- is applied by the schema runner, which drops the statement when the
-- column is there (migrations/schema_migrator.cpp). One statement per line.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS reasoning TEXT;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS partial_reasoning TEXT;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS reasoning_tokens INTEGER;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS thinking_started_at INTEGER;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS thinking_completed_at INTEGER;

-- Live reasoning is appended like the answer's text (0006_message_chunks):
-- readers see partial_reasoning || these chunks in byte order; the final
-- commit, restart recovery and regenerate fold them into `reasoning`.
CREATE TABLE IF NOT EXISTS reasoning_chunks(
  message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  byte_start INTEGER NOT NULL,
  text       TEXT NOT NULL,
  PRIMARY KEY(message_id, byte_start)
) WITHOUT ROWID;
