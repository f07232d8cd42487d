-- Schema of the embedded SQLite store (docs/storage.md). Idempotent: run at every open.
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,            -- sha1 of the canonical URL
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    feed_id TEXT NOT NULL,
    outlet TEXT NOT NULL,
    published TEXT,                 -- ISO 8601, UTC
    fetched TEXT NOT NULL,          -- first time newswatch stored it
    language TEXT,
    author TEXT,
    source TEXT NOT NULL,           -- 'page' (extracted) or 'feed' (feed item's own title/summary)
    cluster_id TEXT,
    seq INTEGER NOT NULL            -- bumped on insert and on content change: the alerts cursor
);
CREATE INDEX IF NOT EXISTS articles_seq ON articles(seq);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);

CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, text, content='articles', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS articles_ai AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS articles_ad AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
END;
CREATE TRIGGER IF NOT EXISTS articles_au AFTER UPDATE OF title, text ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
    INSERT INTO articles_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;

CREATE TABLE IF NOT EXISTS feed_state (feed_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT);

CREATE TABLE IF NOT EXISTS hits (
    key TEXT PRIMARY KEY,           -- article:watch:field:start:end
    article_id TEXT NOT NULL REFERENCES articles(id),
    watch TEXT NOT NULL,
    matched TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    field TEXT NOT NULL,
    sentence TEXT NOT NULL,
    found TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hits_watch ON hits(watch);
CREATE INDEX IF NOT EXISTS hits_article ON hits(article_id);

-- The outbox and ledger: a digest is stored with its hits before sending, and marked sent after.
CREATE TABLE IF NOT EXISTS digests (
    id TEXT PRIMARY KEY,            -- the Message-ID, stable across retries
    recipient TEXT NOT NULL,
    message BLOB NOT NULL,
    created TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt TEXT,
    sent TEXT,
    refusals INTEGER NOT NULL DEFAULT 0, -- attempts refused for good (5xx)
    dead TEXT,                      -- given up (refused for good too often); revived by `outbox retry --id`
    claimed_by TEXT,                -- the sender holding it, until claim_expires
    claim_expires TEXT
);
-- One digest per (recipient, hit): the primary key is what makes "never sent twice" hold.
CREATE TABLE IF NOT EXISTS digest_hits (
    recipient TEXT NOT NULL,
    hit_key TEXT NOT NULL,
    digest_id TEXT NOT NULL REFERENCES digests(id),
    PRIMARY KEY (recipient, hit_key)
);
CREATE INDEX IF NOT EXISTS digest_hits_digest ON digest_hits(digest_id);

-- Near-duplicate signatures of stored articles (crawler.clusters), read back for the clustering window.
CREATE TABLE IF NOT EXISTS signatures (
    article_id TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    url TEXT,
    added TEXT NOT NULL,            -- ISO 8601, UTC
    signature BLOB                  -- NULL for a text too short to compare
);
CREATE INDEX IF NOT EXISTS signatures_added ON signatures(added);

-- Leases (one service, one alerts pass per store): holder, its host and pid, on this machine's clock.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since TEXT NOT NULL,
    expires TEXT NOT NULL
);
