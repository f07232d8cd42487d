-- The spool of writes waiting for Elasticsearch (docs/storage.md). Idempotent: run at every open.
CREATE TABLE IF NOT EXISTS articles (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS articles_id ON articles(id);
CREATE TABLE IF NOT EXISTS feed_state (feed_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (article_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
-- Articles the cluster refused for good (a mapping error), for an operator to look at.
CREATE TABLE IF NOT EXISTS rejected (id TEXT NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
-- Rows that could not be read back (corrupt JSON, a bad date), set aside so the rest replays; listed and
-- dropped with `newswatch spool list` / `newswatch spool drop`.
CREATE TABLE IF NOT EXISTS quarantine (
    row INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,
    reason TEXT NOT NULL, at TEXT NOT NULL
);
