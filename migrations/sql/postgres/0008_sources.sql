-- Sources and citations (docs/design.md §9, issue 23); see the SQLite
-- script for why access_count is kept by triggers.
CREATE TABLE IF NOT EXISTS source_metadata(
  url_hash       TEXT PRIMARY KEY,
  url            TEXT NOT NULL,
  domain         TEXT NOT NULL,
  og_title       TEXT,
  og_description TEXT,
  og_image       TEXT,
  favicon        TEXT,
  fetched_at     BIGINT,
  error          TEXT,
  access_count   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS sources(
  id              TEXT PRIMARY KEY,
  message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  position        BIGINT NOT NULL,
  url_hash        TEXT NOT NULL REFERENCES source_metadata(url_hash),
  url             TEXT NOT NULL,
  title           TEXT,
  snippet         TEXT,
  published_date  TEXT,
  provider        TEXT NOT NULL CHECK(provider IN ('upstream','tool','legacy')),
  is_partial      BIGINT NOT NULL DEFAULT 1,
  created_at      BIGINT NOT NULL,
  UNIQUE(message_id, position),
  UNIQUE(message_id, url_hash)
);
CREATE INDEX IF NOT EXISTS sources_by_conversation ON sources(conversation_id);
CREATE INDEX IF NOT EXISTS sources_by_user ON sources(user_id);
CREATE INDEX IF NOT EXISTS sources_by_url_hash ON sources(url_hash);

CREATE OR REPLACE FUNCTION sources_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE source_metadata SET access_count = access_count + 1 WHERE url_hash = NEW.url_hash;
    RETURN NEW;
  END IF;
  UPDATE source_metadata SET access_count = access_count - 1 WHERE url_hash = OLD.url_hash;
  DELETE FROM source_metadata WHERE url_hash = OLD.url_hash AND access_count <= 0;
  RETURN OLD;
END $$;
DROP TRIGGER IF EXISTS sources_count ON sources;
CREATE TRIGGER sources_count AFTER INSERT OR DELETE ON sources
  FOR EACH ROW EXECUTE FUNCTION sources_count();
