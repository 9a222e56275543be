-- Sources and citations (docs/design.md §9, issue 23). One source_metadata
-- row per normalized URL, shared by every message that cites it; one
-- sources row per citation. access_count is kept by the triggers below, so
-- it stays equal to the citations pointing at the row whichever way they
-- go (a conversation deleted by cascade, a regenerate, migration 003's
-- rollback); a row nothing cites any more goes with its last citation.
CREATE TABLE IF NOT EXISTS source_metadata(
  url_hash       TEXT PRIMARY KEY,
  url            TEXT NOT NULL,
  domain         TEXT NOT NULL,
  og_title       TEXT,
  og_description TEXT,
  og_image       TEXT,
  favicon        TEXT,
  fetched_at     INTEGER,
  error          TEXT,
  access_count   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS sources(
  id              TEXT PRIMARY KEY,
  message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  position        INTEGER NOT NULL,
  url_hash        TEXT NOT NULL REFERENCES source_metadata(url_hash),
  url             TEXT NOT NULL,
  title           TEXT,
  snippet         TEXT,
  published_date  TEXT,
  provider        TEXT NOT NULL CHECK(provider IN ('upstream','tool','legacy')),
  is_partial      INTEGER NOT NULL DEFAULT 1,
  created_at      INTEGER NOT NULL,
  UNIQUE(message_id, position),
  UNIQUE(message_id, url_hash)
);
CREATE INDEX IF NOT EXISTS sources_by_conversation ON sources(conversation_id);
CREATE INDEX IF NOT EXISTS sources_by_user ON sources(user_id);
CREATE INDEX IF NOT EXISTS sources_by_url_hash ON sources(url_hash);

CREATE TRIGGER IF NOT EXISTS sources_count_insert AFTER INSERT ON sources
BEGIN
  UPDATE source_metadata SET access_count = access_count + 1 WHERE url_hash = new.url_hash;
END;
CREATE TRIGGER IF NOT EXISTS sources_count_delete AFTER DELETE ON sources
BEGIN
  UPDATE source_metadata SET access_count = access_count - 1 WHERE url_hash = old.url_hash;
  DELETE FROM source_metadata WHERE url_hash = old.url_hash AND access_count <= 0;
END;
