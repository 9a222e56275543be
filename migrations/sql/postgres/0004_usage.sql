-- PostgreSQL dialect of ../0004_usage.sql: BIGINT for INTEGER, DOUBLE PRECISION for REAL,
-- a ::json cast for json_valid().
-- Usage accounting per (user, UTC day, model) for quotas and getUsage
-- (issue 12). message_count is bumped when a generation is accepted, the
-- tokens and cost when it completes, each in the transaction that writes
-- the message.
CREATE TABLE IF NOT EXISTS usage(
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day           TEXT NOT NULL,              -- UTC 'YYYY-MM-DD'
  model         TEXT NOT NULL DEFAULT '',   -- '' when the provider's default was used
  input_tokens  BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cost          DOUBLE PRECISION NOT NULL DEFAULT 0,    -- USD
  message_count BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY(user_id, day, model)
);
