-- PostgreSQL dialect of ../0003_files.sql: BIGINT for INTEGER, DOUBLE PRECISION for REAL,
-- a ::json cast for json_valid().
-- Uploaded files (issue 11). A blob is stored once per content
-- (storage_id = lowercase hex SHA-256 of its bytes) under the files
-- directory; `files` has one row per blob on disk, `uploads` one row per
-- (user, blob) so "the caller uploaded it" is checkable. Attachments refer
-- to blobs by storage_id (no foreign key: legacy attachments carry storage
-- ids of files chatstream never stored).
CREATE TABLE IF NOT EXISTS files(
  storage_id TEXT PRIMARY KEY,
  size       BIGINT NOT NULL,
  mime_type  TEXT NOT NULL,
  metadata   TEXT CHECK(metadata IS NULL OR metadata::json IS NOT NULL),
  created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS uploads(
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  storage_id  TEXT NOT NULL REFERENCES files(storage_id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  mime_type   TEXT NOT NULL,
  uploaded_at BIGINT NOT NULL,
  PRIMARY KEY(user_id, storage_id)
);
CREATE INDEX IF NOT EXISTS uploads_by_storage ON uploads(storage_id, uploaded_at);
