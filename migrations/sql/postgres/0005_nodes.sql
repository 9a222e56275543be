-- PostgreSQL dialect of ../0005_nodes.sql: BIGINT for INTEGER, DOUBLE PRECISION for REAL,
-- a ::json cast for json_valid().
-- Nodes sharing one database (issue 10). A serving node renews its lease
-- (heartbeat_at) every few seconds; each running generation names its node,
-- so restart recovery and the orphan sweep interrupt only the messages of a
-- node whose lease has lapsed, never those of a live peer. A generations row
-- lives exactly as long as the message is pending/generating.
CREATE TABLE IF NOT EXISTS nodes(
  id           TEXT PRIMARY KEY,
  address      TEXT,
  started_at   BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS generations(
  message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  node_id    TEXT NOT NULL,
  started_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_by_node ON generations(node_id);
