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
-- Retention (prune, stats per month) reads fetched; search --since reads the date an article is shown at.
CREATE INDEX IF NOT EXISTS articles_fetched ON articles(fetched);
CREATE INDEX IF NOT EXISTS articles_dated ON articles(COALESCE(published, fetched));
-- The copies of one story (Store.cluster_articles), oldest first.
CREATE INDEX IF NOT EXISTS articles_cluster ON articles(cluster_id, fetched);

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
DROP INDEX IF EXISTS hits_watch;  -- served by hits_watch_found
-- A watch's hits newest first (Store.watch_hits: `search --watch`, the web page's watch view).
CREATE INDEX IF NOT EXISTS hits_watch_found ON hits(watch, found);
DROP INDEX IF EXISTS hits_article;  -- served by hits_article_watch, which also answers "delivered once per watch"
CREATE INDEX IF NOT EXISTS hits_article_watch ON hits(article_id, watch);
CREATE INDEX IF NOT EXISTS hits_found ON hits(found);  -- a pass reads the recipient's window, not every hit

-- Distinct articles with a hit of a watch per UTC hour of the article's fetched time (when newswatch first
-- stored it), counted as hits are added: digest trends read a few hundred rows, never the articles. Kept so
-- since PRAGMA user_version 1; a file of an older version (counted at published) has them counted again.
CREATE TABLE IF NOT EXISTS mention_hours (
    watch TEXT NOT NULL,
    hour TEXT NOT NULL,             -- ISO 8601, UTC, the hour's start
    articles INTEGER NOT NULL,
    PRIMARY KEY (watch, hour)
) WITHOUT ROWID;

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
CREATE INDEX IF NOT EXISTS signatures_url ON signatures(url);
-- The LSH band keys of each signature (models.band_keys): a crawl looks up the few signatures its article
-- could be a copy of, instead of loading the window.
-- By the signature's rowid (8 bytes, not a 40-character id, 32 times an article): stable, as newswatch never
-- runs a full VACUUM (which may renumber rowids; articles_fts relies on the articles' rowids too).
CREATE TABLE IF NOT EXISTS signature_bands (
    band INTEGER NOT NULL,
    signature INTEGER NOT NULL,     -- signatures.rowid
    PRIMARY KEY (band, signature)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signature_bands_signature ON signature_bands(signature);

-- Leases (one service, one alerts pass per store): holder, its host and pid, on this machine's clock.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since TEXT NOT NULL,
    expires TEXT NOT NULL
);

-- Running totals and latest values reported by the crawl child and the alerts pass (the web page's /metrics).
CREATE TABLE IF NOT EXISTS metrics (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
) WITHOUT ROWID;
