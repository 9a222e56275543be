-- PostgreSQL dialect of ../0001_legacy_columns.legacy.sql: BIGINT for INTEGER, DOUBLE PRECISION for REAL,
-- a ::json cast for json_valid().
-- Runs only on a legacy database (docs/design.md §5): adds the columns the new
-- code reads to the legacy tables without touching any legacy value.
-- On a fresh database this file is recorded as not applicable.
ALTER TABLE conversations ADD COLUMN pinned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN archived BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN starred BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN system_prompt TEXT;

ALTER TABLE messages ADD COLUMN error TEXT;
ALTER TABLE messages ADD COLUMN finish_reason TEXT;
ALTER TABLE messages ADD COLUMN input_tokens BIGINT;
ALTER TABLE messages ADD COLUMN output_tokens BIGINT;
ALTER TABLE messages ADD COLUMN cost DOUBLE PRECISION;
ALTER TABLE messages ADD COLUMN tokens_per_second DOUBLE PRECISION;
ALTER TABLE messages ADD COLUMN first_token_at BIGINT;
ALTER TABLE messages ADD COLUMN generation_started_at BIGINT;
ALTER TABLE messages ADD COLUMN generation_completed_at BIGINT;

UPDATE conversations
   SET message_count = (SELECT count(*) FROM messages m WHERE m.conversation_id = conversations.id);
