-- Runs only on a legacy database (docs/design.md §5): adds the columns the new
-- code reads to the legacy tables without touching any legacy value.
-- On a fresh database this file is recorded as not applicable.
ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN starred INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN system_prompt TEXT;

ALTER TABLE messages ADD COLUMN error TEXT;
ALTER TABLE messages ADD COLUMN finish_reason TEXT;
ALTER TABLE messages ADD COLUMN input_tokens INTEGER;
ALTER TABLE messages ADD COLUMN output_tokens INTEGER;
ALTER TABLE messages ADD COLUMN cost REAL;
ALTER TABLE messages ADD COLUMN tokens_per_second REAL;
ALTER TABLE messages ADD COLUMN first_token_at INTEGER;
ALTER TABLE messages ADD COLUMN generation_started_at INTEGER;
ALTER TABLE messages ADD COLUMN generation_completed_at INTEGER;

UPDATE conversations
   SET message_count = (SELECT count(*) FROM messages m WHERE m.conversation_id = conversations.id);
