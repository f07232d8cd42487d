"""SqliteStore: the Store interface over one SQLite file (docs/storage.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from newswatch.core.errors import StoreConflict, StoreUnavailable
from newswatch.core.feedstate import FeedState
from newswatch.core.models import (
    ARTICLE_FIELDS,
    SIGNATURE_CANDIDATES,
    SIGNATURE_WINDOW,
    Article,
    ClusterSignature,
    Hit,
    LeaseHolder,
    MonthStats,
    OwedHit,
    PruneReport,
    QueuedDigest,
    SearchResult,
    StoreStats,
    band_keys,
)
from newswatch.core.store import Store
from newswatch.core.store.database import (
    Transaction,
    feed_states,
    open_database,
    open_reader,
    present_ids,
    put_feed_state,
)
from newswatch.core.store.leases import claim_vanished, holder_key, vanished
from newswatch.core.store.query import Query, folded_words, marked_fragment, parse, query_error, reduce_phrases
from newswatch.core.times import from_iso, iso, utc_now

log = logging.getLogger(__name__)

SCHEMA = Path(__file__).with_name("schema.sql")
# Planner statistics: ANALYZE reads at most this many rows per index (so it takes milliseconds at any size),
# when a file has none and again after every ANALYZE_EVERY rows written; PRAGMA optimize at close. Without
# them SQLite may check each owed hit against every delivered hit of a recipient (quadratic).
ANALYSIS_LIMIT = 1000
ANALYZE_EVERY = 20_000
# Search ranks the newest window holding enough matches first (see search).
SEARCH_WINDOWS = (timedelta(days=7), timedelta(days=30), timedelta(days=365))
PRUNE_CHUNK = 5000  # articles deleted per transaction, so a first prune of a year never holds the file for minutes
VACUUM_STEP = 2000  # pages given back to the disk per step of a prune
_ARTICLE_COLUMNS = ", ".join(ARTICLE_FIELDS)
# Sentinels FTS5 wraps around matched terms (no stored text holds them), turned into the fragment's offsets.
_OPEN, _CLOSE = "\x02", "\x03"


# The hits' columns and the article's (a_id, a_url ...), for reading hits with their article in one query.
_HIT_AND_ARTICLE = "h.*, " + ", ".join(f"a.{c} AS a_{c}" for c in ARTICLE_FIELDS)
_IDS_PER_QUERY = 500  # below SQLite's limit on the parameters of one statement
# PRAGMA user_version of a file whose mention counts are kept at the hour an article was first stored
# (fetched); a file of an older version counted them at published, and has them counted again once.
_MENTIONS_BY_FETCHED = 1


def _fts_query(parsed: Query, phrases: Sequence[str] = ()) -> str:
    """The FTS5 expression of a parsed query (query.parse: words, "phrases", OR, -word, word*) or'ed with
    the ``phrases``; "" for none (the newest articles). Every term is an FTS5 string, its quotes doubled, so
    nothing a user types and no spelling is ever FTS5 syntax (a stray quote or AND would be an error)."""
    positive = " AND ".join(
        group_text if len(group) == 1 else f"({group_text})"
        for group in parsed.groups
        if (group_text := " OR ".join(_fts_string(t.text, prefix=t.prefix) for t in group))
    )
    spellings = " OR ".join(_fts_string(p) for p in phrases)
    if positive and spellings:
        positive = f"({positive}) OR {spellings}"
    positive = positive or spellings
    if not positive:
        return ""
    if parsed.excluded:
        return f"({positive}) NOT ({' OR '.join(_fts_string(t.text, prefix=t.prefix) for t in parsed.excluded)})"
    return positive


def _fts_string(text: str, *, prefix: bool = False) -> str:
    """``text`` as an FTS5 string (a phrase of its words), a prefix of its last word with ``prefix``."""
    quoted = text.replace('"', '""')
    return f'"{quoted}"' + ("*" if prefix else "")


def _hour(moment: str) -> str:
    """The start of the UTC hour of a stored ISO time, as stored in mention_hours."""
    return iso(from_iso(moment).replace(minute=0, second=0, microsecond=0))


def _hit(row: sqlite3.Row) -> Hit:
    return Hit(
        article_id=row["article_id"],
        watch=row["watch"],
        matched=row["matched"],
        start=row["start"],
        end=row["end"],
        field=row["field"],
        sentence=row["sentence"],
    )


def _owed(row: sqlite3.Row) -> OwedHit:
    """A row of hits joined with its article (_HIT_AND_ARTICLE)."""
    return OwedHit(hit=_hit(row), article=Article.from_record(row, prefix="a_"), found=from_iso(row["found"]))


def _holder(row: sqlite3.Row) -> LeaseHolder:
    return LeaseHolder(row["holder"], row["host"], row["pid"], from_iso(row["since"]), from_iso(row["expires"]))


class SqliteStore(Store):
    """Store in one SQLite file (WAL mode, so the crawl process writes while the service reads)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._db = open_database(self.path, SCHEMA, synchronous="NORMAL", what="SQLite store")
        self._lock = threading.RLock()  # one connection, used from the reactor's and the pipeline's threads
        # The crawl's reads on its reactor thread (known_ids, similar_signatures) have a connection of their own:
        # behind the pipeline thread's lock they waited out each batch it wrote, and the reactor with them.
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._written = 0  # rows written since the last ANALYZE
        self._add_missing_columns()
        try:
            self._fill_new_tables()
        except StoreUnavailable as exc:  # read-only or full: readable all the same; a writable open fills them
            log.warning("store_counts_not_built path=%s reason=%s", self.path, exc)
        self._keep_statistics(initial=True)

    def _add_missing_columns(self) -> None:
        """Columns added since the first version of the schema, to a file an older version created."""
        with self._tx() as db:
            have = {row["name"] for row in db.execute("PRAGMA table_info(digests)")}
            for column, kind in (
                ("refusals", "INTEGER NOT NULL DEFAULT 0"),
                ("dead", "TEXT"),
                ("claimed_by", "TEXT"),
                ("claim_expires", "TEXT"),
            ):
                if column not in have:
                    db.execute(f"ALTER TABLE digests ADD COLUMN {column} {kind}")

    def _fill_new_tables(self) -> None:
        """Counts and keys that an older version did not keep, or kept otherwise, built once from what the
        file holds: the mention counts (none yet, or counted at published by a version before
        _MENTIONS_BY_FETCHED: read whole once, then kept as hits are added), the band keys."""
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            has_hits = db.execute("SELECT 1 FROM hits LIMIT 1").fetchone()
            if has_hits and (
                version < _MENTIONS_BY_FETCHED or not db.execute("SELECT 1 FROM mention_hours LIMIT 1").fetchone()
            ):
                db.execute("DELETE FROM mention_hours")
                db.execute(
                    "INSERT INTO mention_hours (watch, hour, articles) "
                    "SELECT watch, hour, COUNT(*) FROM (SELECT DISTINCT h.watch, "
                    "strftime('%Y-%m-%dT%H:00:00+00:00', a.fetched) AS hour, a.id "
                    "FROM hits h JOIN articles a ON a.id = h.article_id) GROUP BY watch, hour"
                )
                log.info("store_mention_counts_built path=%s", self.path)
            if version < _MENTIONS_BY_FETCHED:
                db.execute(f"PRAGMA user_version = {_MENTIONS_BY_FETCHED}")
            if (
                db.execute("SELECT 1 FROM signatures LIMIT 1").fetchone()
                and not db.execute("SELECT 1 FROM signature_bands LIMIT 1").fetchone()
            ):
                since = iso(utc_now() - SIGNATURE_WINDOW)
                rows = db.execute("SELECT rowid, signature FROM signatures WHERE added >= ?", (since,)).fetchall()
                db.executemany(
                    "INSERT OR IGNORE INTO signature_bands (band, signature) VALUES (?, ?)",
                    [(band, row[0]) for row in rows for band in band_keys(row[1])],
                )

    def _keep_statistics(self, *, initial: bool = False) -> None:
        """ANALYZE (bounded by ANALYSIS_LIMIT) when a file holding hits has no statistics of them yet, or
        after many writes. A file that refuses the write (read-only, full) goes on without: what was written
        stays written, and a later writer analyzes."""
        with self._lock:
            if initial:
                self._db.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
                if not self._db.execute("SELECT 1 FROM hits LIMIT 1").fetchone():
                    return  # nothing to plan for yet: the writes that come analyze it
                has = self._db.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_stat1'").fetchone()
                if has and self._db.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl='hits'").fetchone():
                    return
            elif self._written < ANALYZE_EVERY:
                return
            try:
                with self._tx() as db:
                    db.execute("ANALYZE")
            except StoreUnavailable as exc:
                log.warning("store_analyze_skipped path=%s reason=%s", self.path, exc)
            self._written = 0

    def _tx(self) -> Transaction:
        return Transaction(self._db, self._lock, f"SQLite store {self.path}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The reading connection (it sees the last commit, whatever is being written), for one caller at a time."""
        with self._read_lock:
            if self._reader is None:
                self._reader = open_reader(self.path, what="SQLite store")
            yield self._reader

    # -- crawler side
    def add_articles(self, articles: Sequence[Article]) -> int:
        changed = 0
        with self._tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM articles").fetchone()[0]
            for article in articles:
                seq += 1
                cursor = db.execute(
                    f"""INSERT INTO articles ({_ARTICLE_COLUMNS}, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                    ON CONFLICT(id) DO UPDATE SET
                      url=excluded.url, title=excluded.title, text=excluded.text, feed_id=excluded.feed_id,
                      outlet=excluded.outlet, published=COALESCE(excluded.published, articles.published),
                      language=excluded.language, author=excluded.author, source=excluded.source,
                      cluster_id=COALESCE(articles.cluster_id, excluded.cluster_id), seq=excluded.seq
                    WHERE (articles.title IS NOT excluded.title OR articles.text IS NOT excluded.text)
                      AND NOT (excluded.source = 'feed' AND articles.source = 'page')""",
                    (
                        article.id,
                        article.url,
                        article.title,
                        article.text,
                        article.feed_id,
                        article.outlet,
                        iso(article.published),
                        iso(article.fetched or utc_now()),
                        article.language,
                        article.author,
                        article.source,
                        article.cluster_id,
                        seq,
                    ),
                )
                changed += cursor.rowcount
        self._written += len(articles)
        self._keep_statistics()
        return changed

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        with self._reading() as db:
            return present_ids(db, "articles", ids)

    def get_article(self, article_id: str) -> Article | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id=?", (article_id,)).fetchone()
        return Article.from_record(row) if row else None

    def get_feed_state(self, feed_id: str) -> FeedState | None:
        with self._lock:
            return feed_states(self._db, feed_id).get(feed_id)

    def set_feed_state(self, feed_id: str, state: FeedState) -> None:
        with self._tx() as db:
            put_feed_state(db, feed_id, state)

    def all_feed_states(self) -> dict[str, FeedState]:
        with self._lock:
            return feed_states(self._db)

    def add_signatures(self, signatures: Sequence[ClusterSignature]) -> None:
        with self._tx() as db:
            for sig in signatures:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO signatures (article_id, cluster_id, url, added, signature) "
                    "VALUES (?,?,?,?,?)",
                    (sig.article_id, sig.cluster_id, sig.url, iso(sig.added), sig.signature),
                )
                if cursor.rowcount:
                    db.executemany(
                        "INSERT OR IGNORE INTO signature_bands (band, signature) VALUES (?, ?)",
                        [(band, cursor.lastrowid) for band in sig.bands],
                    )

    def similar_signatures(
        self, article_id: str, url: str | None, bands: Sequence[int], since: datetime
    ) -> list[ClusterSignature]:
        marks = ",".join("?" * len(bands))
        # The band keys' signatures grouped in the index alone, and only the SIGNATURE_CANDIDATES sharing the
        # most keys read (newest, i.e. highest rowid, among equals).
        by_band = (
            f"UNION SELECT * FROM (SELECT signature FROM signature_bands WHERE band IN ({marks}) "
            "GROUP BY signature ORDER BY COUNT(*) DESC, signature DESC LIMIT ?)"
            if bands
            else ""
        )
        with self._reading() as db:
            rows = db.execute(
                "SELECT article_id, cluster_id, url, added, signature FROM signatures WHERE rowid IN ("
                "SELECT rowid FROM signatures WHERE article_id = ? UNION SELECT rowid FROM signatures WHERE url = ? "
                f"{by_band}) AND added >= ? ORDER BY added, article_id",
                (article_id, url, *bands, *([SIGNATURE_CANDIDATES] if bands else []), iso(since)),
            ).fetchall()
        return [ClusterSignature(r[0], r[1], r[2], from_iso(r[3]), r[4]) for r in rows]

    def prune_signatures(self, before: datetime) -> int:
        with self._tx() as db:
            return _prune_signatures(db, iso(before))

    # -- search and reading back
    def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        watch: str | None = None,
        limit: int = 20,
        phrases: Sequence[str] = (),
    ) -> list[SearchResult]:
        parsed = parse(query, alternatives=bool(phrases))
        spellings = self._present(reduce_phrases(phrases, folded_words), since) if phrases else []
        if phrases and not spellings and not parsed.groups:
            return []  # none of the spellings is stored (in the range): nothing matches
        match = _fts_query(parsed, spellings)
        # Ranked within the newest window that holds ``limit`` matches (SEARCH_WINDOWS, then since or all):
        # a common word matches half the store, and ranking every match of a year costs seconds.
        now = utc_now()
        cutoffs = [now - window for window in SEARCH_WINDOWS if since is None or now - window > since]
        rows: list[sqlite3.Row] = []
        for cutoff in [*cutoffs, since]:
            first = self._first_rowid(cutoff, exact=cutoff is since)
            if first is None:  # nothing stored in this window (or, the last one, dated since)
                continue
            try:
                rows = self._ranked(match, first, since, watch, limit)
            except sqlite3.OperationalError as exc:
                if "fts5" not in str(exc):
                    raise
                raise query_error(query, str(exc)) from None
            if len(rows) >= limit:
                break
        return [
            SearchResult(
                article=Article.from_record(row),
                score=-float(row["rank"]),
                fragments=[marked_fragment(row["frag"] or "", _OPEN, _CLOSE)],
            )
            for row in rows
        ]

    def _present(self, phrases: list[str], since: datetime | None) -> list[str]:
        """The phrases that some article of the range holds, each asked of the index alone (a seek, then the
        first match): FTS5 steps every branch of an OR for every match, so a watch's hundreds of spellings,
        most of which no article holds, would make each match of the others hundreds of times slower."""
        first = self._first_rowid(since, exact=True)
        if first is None:
            return []
        with self._lock:
            return [
                phrase
                for phrase in phrases
                if self._db.execute(
                    "SELECT 1 FROM articles_fts WHERE articles_fts MATCH ? AND rowid >= ? LIMIT 1",
                    (_fts_string(phrase), first),
                ).fetchone()
            ]

    def _first_rowid(self, cutoff: datetime | None, *, exact: bool) -> int | None:
        """The lowest rowid of an article dated (published, else fetched) at or after ``cutoff`` (``exact``),
        or stored since then (a window); 0 for no cutoff; None when there is none. Articles are stored in
        the order they are fetched, so FTS5 seeks there instead of reading every older match."""
        if cutoff is None:
            return 0
        sql = (
            "SELECT MIN(rowid) FROM articles INDEXED BY articles_dated WHERE COALESCE(published, fetched) >= ?"
            if exact
            else "SELECT MIN(rowid) FROM articles INDEXED BY articles_fetched WHERE fetched >= ?"
        )
        with self._lock:
            return self._db.execute(sql, (iso(cutoff),)).fetchone()[0]

    def _ranked(
        self, match: str, first: int, since: datetime | None, watch: str | None, limit: int
    ) -> list[sqlite3.Row]:
        """The best ``limit`` matches of the FTS5 expression ``match`` from rowid ``first``. Ranked on the
        index alone first (bm25, ties by storage order), then only those candidates get their fragment and
        article row: computing snippets and reading rows for every match is what made a common word slow."""
        where, params = ["a.rowid >= ?"], [first]
        if since:
            where.append("COALESCE(a.published, a.fetched) >= ?")
            params.append(iso(since))
        if watch:
            where.append("EXISTS (SELECT 1 FROM hits h WHERE h.article_id = a.id AND h.watch = ?)")
            params.append(watch)
        order = "ORDER BY rank, COALESCE(a.published, a.fetched) DESC LIMIT ?"
        if not match:  # no words: the newest articles
            sql = f"SELECT a.*, substr(a.text, 1, 160) AS frag, 0 AS rank FROM articles a WHERE {' AND '.join(where)}"
            with self._lock:
                return self._db.execute(f"{sql} {order}", [*params, limit]).fetchall()
        join = "JOIN articles a ON a.rowid = articles_fts.rowid" if since or watch else ""
        candidates = (
            "SELECT articles_fts.rowid AS rid, bm25(articles_fts) AS rank FROM articles_fts "
            f"{join} WHERE articles_fts MATCH ? AND articles_fts.rowid >= ? "
            f"{' AND '.join(['', *where[1:]])} ORDER BY rank, articles_fts.rowid DESC LIMIT ?"
        )
        # 3x: equal scores are then ordered newest first among the candidates.
        sql = (
            f"WITH top AS MATERIALIZED ({candidates}) "
            "SELECT a.*, snippet(articles_fts, 1, ?, ?, '…', 16) AS frag, top.rank AS rank "
            "FROM top CROSS JOIN articles_fts CROSS JOIN articles a "
            f"WHERE articles_fts.rowid = top.rid AND articles_fts MATCH ? AND a.rowid = top.rid {order}"
        )
        args = [match, first, *params[1:], limit * 3, _OPEN, _CLOSE, match, limit]
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def watch_hits(self, watch: str, *, since: datetime | None = None, limit: int = 50) -> list[OwedHit]:
        # Through hits_watch_found, newest first; only the ties of the last found time are sorted by article.
        sql = f"SELECT {_HIT_AND_ARTICLE} FROM hits h JOIN articles a ON a.id = h.article_id WHERE h.watch = ?"
        params: list = [watch]
        if since is not None:
            sql += " AND h.found >= ?"
            params.append(iso(since))
        sql += " ORDER BY h.found DESC, COALESCE(a.published, a.fetched) DESC, h.article_id, h.field, h.start LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*params, max(0, int(limit))]).fetchall()
        return [_owed(row) for row in rows]

    def hits_for_articles(self, article_ids: Collection[str]) -> list[Hit]:
        wanted = list(dict.fromkeys(article_ids))
        rows: list[sqlite3.Row] = []
        with self._lock:
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                rows += self._db.execute(
                    f"SELECT * FROM hits WHERE article_id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
        order = {article_id: n for n, article_id in enumerate(wanted)}
        hits = [_hit(row) for row in rows]
        return sorted(hits, key=lambda h: (order[h.article_id], h.field != "title", h.start, h.end, h.watch))

    def cluster_articles(self, cluster_id: str, limit: int = 200) -> list[Article]:
        # An article stored without a cluster is a story of its own (articles_cluster, and its primary key).
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE cluster_id = ? OR (id = ? AND cluster_id IS NULL) "
                "ORDER BY fetched, id LIMIT ?",
                (cluster_id, cluster_id, max(0, int(limit))),
            ).fetchall()
        return [Article.from_record(row) for row in rows]

    # -- metrics
    def record_metrics(
        self, counts: Mapping[str, float] | None = None, latest: Mapping[str, float] | None = None
    ) -> None:
        if not counts and not latest:
            return
        with self._tx() as db:  # one IMMEDIATE transaction: another process's additions wait, none is lost
            db.executemany(
                "INSERT INTO metrics (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(name, float(value)) for name, value in (counts or {}).items()],
            )
            db.executemany(
                "INSERT INTO metrics (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [(name, float(value)) for name, value in (latest or {}).items()],
            )

    def metrics(self) -> dict[str, float]:
        with self._lock:
            return {row[0]: row[1] for row in self._db.execute("SELECT name, value FROM metrics ORDER BY name")}

    # -- alerts side
    def articles_after(self, cursor: str | None, limit: int = 500) -> tuple[list[Article], str | None]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ARTICLE_COLUMNS}, seq FROM articles WHERE seq > ? ORDER BY seq LIMIT ?",
                (int(cursor or 0), limit),
            ).fetchall()
        if not rows:
            return [], cursor
        return [Article.from_record(row) for row in rows], str(rows[-1]["seq"])

    def get_cursor(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM cursors WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, value),
            )

    def add_hits(self, hits: Sequence[Hit], found: datetime) -> int:
        new = 0
        with self._tx() as db:
            for hit in hits:
                first_of_watch = not db.execute(
                    "SELECT 1 FROM hits WHERE article_id=? AND watch=? LIMIT 1", (hit.article_id, hit.watch)
                ).fetchone()
                added = db.execute(
                    "INSERT OR IGNORE INTO hits (key, article_id, watch, matched, start, end, field, sentence, found) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        hit.key,
                        hit.article_id,
                        hit.watch,
                        hit.matched,
                        hit.start,
                        hit.end,
                        hit.field,
                        hit.sentence,
                        iso(found),
                    ),
                ).rowcount
                new += added
                if added and first_of_watch:  # the article's first hit of this watch: one more mention
                    db.execute(
                        "INSERT INTO mention_hours (watch, hour, articles) "
                        "SELECT ?, strftime('%Y-%m-%dT%H:00:00+00:00', fetched), 1 "
                        "FROM articles WHERE id = ? "
                        "ON CONFLICT(watch, hour) DO UPDATE SET articles = articles + 1",
                        (hit.watch, hit.article_id),
                    )
        self._written += new
        return new

    def mention_counts(self, watch: str, since: datetime) -> dict[datetime, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT hour, articles FROM mention_hours WHERE watch = ? AND hour >= ? ORDER BY hour",
                (watch, _hour(iso(since))),
            ).fetchall()
        return {from_iso(row[0]): row[1] for row in rows}

    def last_mention_before(self, watch: str, before: datetime) -> datetime | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(hour) FROM mention_hours WHERE watch = ? AND hour < ?", (watch, _hour(iso(before)))
            ).fetchone()
        return from_iso(row[0])

    def owed_hits(
        self, recipient: str, watches: Collection[str] | None = None, *, since: datetime | None = None
    ) -> list[OwedHit]:
        sql = (
            f"SELECT {_HIT_AND_ARTICLE} FROM hits h JOIN articles a ON a.id = h.article_id "
            # Owed once per article and watch: when an article's text changes (its page replacing the feed
            # item it was stored from, an update) its new hits of a watch already sent are not news. CROSS
            # JOIN keeps the order (the article's hits, then the recipient's ledger by its key), whatever the
            # statistics say.
            "WHERE NOT EXISTS (SELECT 1 FROM hits h2 CROSS JOIN digest_hits d "
            "WHERE h2.article_id = h.article_id AND h2.watch = h.watch AND d.recipient = ? AND d.hit_key = h2.key)"
        )
        params: list = [recipient]
        if since is not None:  # the window, read through hits_found: a pass never reads every hit
            sql += " AND h.found >= ?"
            params.append(iso(since))
        if watches is not None:
            names = list(watches)
            if not names:
                return []
            # Unary + keeps the plan on hits_found: the window is read once, whatever the watches.
            sql += f" AND {'+' if since is not None else ''}h.watch IN ({','.join('?' * len(names))})"
            params += names
        sql += " ORDER BY h.watch, COALESCE(a.published, a.fetched), h.article_id, h.field, h.start"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_owed(row) for row in rows]

    def queue_digest(self, digest: QueuedDigest) -> None:
        try:
            self._queue_digest(digest)
        except sqlite3.IntegrityError:
            # The (recipient, hit) key is taken: another alerts pass queued these hits first; they are owed once.
            raise StoreConflict(
                f"digest {digest.id}: some of its hits are already queued for {digest.recipient}"
            ) from None

    def _queue_digest(self, digest: QueuedDigest) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM digests WHERE id=?", (digest.id,)).fetchone():
                return  # queued before (a retry after an error): it holds its hits already
            db.execute(
                "INSERT INTO digests (id, recipient, message, created, attempts) VALUES (?,?,?,?,0)",
                (digest.id, digest.recipient, digest.message, iso(digest.created)),
            )
            db.executemany(
                "INSERT INTO digest_hits (recipient, hit_key, digest_id) VALUES (?,?,?)",
                [(digest.recipient, key, digest.id) for key in digest.hit_keys],
            )

    def pending_digests(self) -> list[QueuedDigest]:
        return self._digests("WHERE sent IS NULL AND dead IS NULL ORDER BY created, id")

    def dead_digests(self) -> list[QueuedDigest]:
        return self._digests("WHERE sent IS NULL AND dead IS NOT NULL ORDER BY created, id")

    def claim_digest(self, digest_id: str, holder: LeaseHolder, seconds: float) -> bool:
        now, key = utc_now(), holder_key(holder)
        with self._tx() as db:
            row = db.execute(
                "SELECT claimed_by, claim_expires FROM digests WHERE id=? AND sent IS NULL AND dead IS NULL",
                (digest_id,),
            ).fetchone()
            if row is None:
                return False
            free = row["claimed_by"] in (None, key) or from_iso(row["claim_expires"]) <= now
            if not free and not claim_vanished(row["claimed_by"]):
                return False
            db.execute(
                "UPDATE digests SET claimed_by=?, claim_expires=? WHERE id=?",
                (key, iso(now + timedelta(seconds=seconds)), digest_id),
            )
            return True

    def revive_digest(self, digest_id: str) -> bool:
        with self._tx() as db:
            return bool(
                db.execute(
                    "UPDATE digests SET dead=NULL, next_attempt=NULL, refusals=0 WHERE id=? AND sent IS NULL",
                    (digest_id,),
                ).rowcount
            )

    def sent_digests(self, limit: int = 50) -> list[QueuedDigest]:
        return self._digests(f"WHERE sent IS NOT NULL ORDER BY sent DESC LIMIT {int(limit)}")

    def _digests(self, clause: str) -> list[QueuedDigest]:
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM digests {clause}").fetchall()
            keys: dict[str, list[str]] = {}
            for row in rows:
                keys[row["id"]] = [
                    r[0] for r in self._db.execute("SELECT hit_key FROM digest_hits WHERE digest_id=?", (row["id"],))
                ]
        return [
            QueuedDigest(
                id=row["id"],
                recipient=row["recipient"],
                hit_keys=tuple(keys[row["id"]]),
                message=row["message"],
                created=from_iso(row["created"]),
                attempts=row["attempts"],
                last_error=row["last_error"],
                next_attempt=from_iso(row["next_attempt"]),
                sent=from_iso(row["sent"]),
                refusals=row["refusals"],
                dead=from_iso(row["dead"]),
            )
            for row in rows
        ]

    def mark_digest_sent(self, digest_id: str, when: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE digests SET sent=?, last_error=NULL, claimed_by=NULL, claim_expires=NULL WHERE id=?",
                (iso(when), digest_id),
            )

    def note_digest_failure(
        self, digest_id: str, error: str, next_attempt: datetime, *, permanent: bool = False, dead: bool = False
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE digests SET attempts=attempts+1, refusals=refusals+?, last_error=?, next_attempt=?, dead=?, "
                "claimed_by=NULL, claim_expires=NULL WHERE id=? AND sent IS NULL",
                (int(permanent), error, iso(next_attempt), iso(utc_now()) if dead else None, digest_id),
            )

    # -- leases
    def take_lease(self, name: str, holder: LeaseHolder, seconds: float) -> LeaseHolder:
        now = utc_now()
        with self._tx() as db:
            row = db.execute("SELECT * FROM leases WHERE name=?", (name,)).fetchone()
            current = _holder(row) if row else None
            if current is not None and current.id != holder.id and current.expires > now and not vanished(current):
                return current
            since = current.since if current is not None and current.id == holder.id else now
            taken = LeaseHolder(holder.id, holder.host, holder.pid, since, now + timedelta(seconds=seconds))
            db.execute(
                "INSERT INTO leases (name, holder, host, pid, since, expires) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, host=excluded.host, pid=excluded.pid, "
                "since=excluded.since, expires=excluded.expires",
                (name, taken.id, taken.host, taken.pid, iso(taken.since), iso(taken.expires)),
            )
        return taken

    def release_lease(self, name: str, holder: LeaseHolder) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder.id))

    def count_articles(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    # -- retention
    def _bytes(self) -> int:
        return sum(os.path.getsize(part) for suffix in ("", "-wal") if os.path.exists(part := f"{self.path}{suffix}"))

    def stats(self) -> StoreStats:
        with self._lock:
            db = self._db
            months: dict[str, list[int]] = {}
            for month, count in db.execute("SELECT substr(fetched, 1, 7), COUNT(*) FROM articles GROUP BY 1"):
                months.setdefault(month, [0, 0])[0] = count
            for month, count in db.execute("SELECT substr(found, 1, 7), COUNT(*) FROM hits GROUP BY 1"):
                months.setdefault(month, [0, 0])[1] = count
            oldest = db.execute("SELECT MIN(fetched) FROM articles").fetchone()[0]
            return StoreStats(
                articles=sum(a for a, _ in months.values()),
                hits=sum(h for _, h in months.values()),
                bytes=self._bytes(),
                oldest=from_iso(oldest),
                months=tuple(MonthStats(m, a, h) for m, (a, h) in sorted(months.items())),
            )

    def prune(self, before: datetime) -> PruneReport:
        cut, size = iso(before), self._bytes()
        articles = hits = 0
        with self._lock:
            # The hits a queued (or dead) digest carries stay, as all digests do: they are owed. Read once.
            self._db.execute("DROP TABLE IF EXISTS temp.prune_kept")
            self._db.execute(
                "CREATE TEMP TABLE prune_kept AS SELECT hit_key FROM digest_hits "
                "WHERE digest_id IN (SELECT id FROM digests WHERE sent IS NULL)"
            )
        kept = "SELECT hit_key FROM temp.prune_kept"
        while True:
            with self._tx() as db:
                # Never the article holding the highest seq: new articles are numbered after it, and the
                # alerts cursors must stay below them.
                old = db.execute(
                    "SELECT id FROM articles WHERE fetched < ? AND seq < (SELECT MAX(seq) FROM articles) LIMIT ?",
                    (cut, PRUNE_CHUNK),
                )
                ids = [row[0] for row in old]
                if not ids:
                    break
                marks = ",".join("?" * len(ids))
                hits += db.execute(
                    f"DELETE FROM hits WHERE article_id IN ({marks}) AND key NOT IN ({kept})", ids
                ).rowcount
                articles += db.execute(f"DELETE FROM articles WHERE id IN ({marks})", ids).rowcount
            log.info("store_prune_progress articles=%d hits=%d before=%s", articles, hits, cut)
        with self._tx() as db:
            hits += db.execute(f"DELETE FROM hits WHERE found < ? AND key NOT IN ({kept})", (cut,)).rowcount
            signatures = _prune_signatures(db, cut)
            db.execute("DELETE FROM mention_hours WHERE hour < ?", (_hour(cut),))
        self._give_back()
        self._written = ANALYZE_EVERY
        self._keep_statistics()
        return PruneReport(articles, hits, signatures, max(0, size - self._bytes()))

    def _give_back(self) -> None:
        """Return the freed pages to the disk (a file in INCREMENTAL auto_vacuum mode), a few thousand pages
        per step so that a crawl writing meanwhile waits milliseconds, not the whole vacuum."""
        try:
            with self._lock:
                self._db.execute("DROP TABLE IF EXISTS temp.prune_kept")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                incremental = self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
            while incremental:
                with self._lock:
                    if not self._db.execute("PRAGMA freelist_count").fetchone()[0]:
                        break
                    # executescript runs it to the end (execute stops after one page)
                    self._db.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP});")
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # what was deleted stays deleted; the pages are reused meanwhile
            log.warning("store_vacuum_incomplete path=%s reason=%s", self.path, exc)

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
        with self._lock:
            try:
                self._db.execute("PRAGMA optimize")  # statistics the queries of this connection would want
            except sqlite3.Error as exc:  # read-only or full: the statistics wait for the next writer
                log.debug("store_optimize_skipped path=%s reason=%s", self.path, exc)
            self._db.close()


def _prune_signatures(db: sqlite3.Connection, before: str) -> int:
    """Delete the signatures added before ``before`` with their band keys, in the caller's transaction."""
    db.execute(
        "DELETE FROM signature_bands WHERE signature IN (SELECT rowid FROM signatures WHERE added < ?)", (before,)
    )
    return db.execute("DELETE FROM signatures WHERE added < ?", (before,)).rowcount
