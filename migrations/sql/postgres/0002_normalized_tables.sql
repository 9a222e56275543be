-- PostgreSQL dialect of ../0002_normalized_tables.sql: BIGINT for INTEGER, DOUBLE PRECISION for REAL,
-- a ::json cast for json_valid().
-- The normalized schema of docs/design.md §4. Tables that a legacy database
-- already has (users, conversations, messages) are kept as they are.
CREATE TABLE IF NOT EXISTS users(
  id          TEXT PRIMARY KEY,
  external_id TEXT UNIQUE,
  name        TEXT,
  created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS conversations(
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title           TEXT NOT NULL DEFAULT 'New Chat',
  model           TEXT,
  pinned          BIGINT NOT NULL DEFAULT 0,
  archived        BIGINT NOT NULL DEFAULT 0,
  starred         BIGINT NOT NULL DEFAULT 0,
  message_count   BIGINT NOT NULL DEFAULT 0,
  system_prompt   TEXT,
  last_message_at BIGINT,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS messages(
  id                      TEXT PRIMARY KEY,
  conversation_id         TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role                    TEXT NOT NULL CHECK(role IN ('user','assistant','system')),
  content                 TEXT NOT NULL DEFAULT '',
  partial_content         TEXT,
  status                  TEXT NOT NULL,
  model                   TEXT,
  error                   TEXT,
  finish_reason           TEXT,
  input_tokens            BIGINT,
  output_tokens           BIGINT,
  cost                    DOUBLE PRECISION,
  tokens_per_second       DOUBLE PRECISION,
  first_token_at          BIGINT,
  generation_started_at   BIGINT,
  generation_completed_at BIGINT,
  created_at              BIGINT NOT NULL,
  updated_at              BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, created_at);
CREATE INDEX IF NOT EXISTS messages_by_status ON messages(status)
  WHERE status IN ('pending','generating');
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations(user_id, updated_at);

CREATE TABLE IF NOT EXISTS attachments(
  id              TEXT PRIMARY KEY,
  message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  position        BIGINT NOT NULL,
  type            TEXT NOT NULL CHECK(type IN ('image','file','audio')),
  name            TEXT NOT NULL,
  storage_id      TEXT NOT NULL,
  mime_type       TEXT NOT NULL,
  size            BIGINT NOT NULL,
  metadata        TEXT CHECK(metadata IS NULL OR metadata::json IS NOT NULL),
  created_at      BIGINT NOT NULL,
  UNIQUE(message_id, position)
);
CREATE INDEX IF NOT EXISTS attachments_by_conversation ON attachments(conversation_id);
CREATE INDEX IF NOT EXISTS attachments_by_user ON attachments(user_id);
CREATE INDEX IF NOT EXISTS attachments_by_storage ON attachments(storage_id);

CREATE TABLE IF NOT EXISTS tool_calls(
  id              TEXT PRIMARY KEY,
  message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  tool_call_id    TEXT NOT NULL,
  tool_name       TEXT NOT NULL,
  args            TEXT NOT NULL DEFAULT '{}' CHECK(args::json IS NOT NULL),
  result          TEXT CHECK(result IS NULL OR result::json IS NOT NULL),
  text_position   BIGINT,
  is_partial      BIGINT NOT NULL DEFAULT 1,
  timestamp       BIGINT NOT NULL,
  created_at      BIGINT NOT NULL,
  UNIQUE(message_id, tool_call_id)
);
CREATE INDEX IF NOT EXISTS tool_calls_by_conversation ON tool_calls(conversation_id);
CREATE INDEX IF NOT EXISTS tool_calls_by_user ON tool_calls(user_id);
CREATE INDEX IF NOT EXISTS tool_calls_by_message_partial ON tool_calls(message_id, is_partial);

CREATE TABLE IF NOT EXISTS migrations(
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL,
  phase             TEXT NOT NULL CHECK(phase IN ('schema','backfill','dual-write','dual-read','cleanup','complete')),
  status            TEXT NOT NULL CHECK(status IN ('pending','running','completed','failed','rolled-back')),
  cursor            TEXT,
  processed         BIGINT NOT NULL DEFAULT 0,
  success_count     BIGINT NOT NULL DEFAULT 0,
  error_count       BIGINT NOT NULL DEFAULT 0,
  last_processed_id TEXT,
  total_records     BIGINT,
  started_at        BIGINT,
  updated_at        BIGINT,
  completed_at      BIGINT,
  error             TEXT
);

CREATE TABLE IF NOT EXISTS migration_errors(
  migration_id TEXT NOT NULL REFERENCES migrations(id) ON DELETE CASCADE,
  record_id    TEXT NOT NULL,
  error        TEXT NOT NULL,
  raw          TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  PRIMARY KEY(migration_id, record_id)
);
