"""Durable on-disk spool of writes waiting for Elasticsearch: one SQLite file, replayed oldest first."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, ClusterSignature
from newswatch.core.store.database import Transaction, feed_states, open_database, present_ids, put_feed_state
from newswatch.core.store.elastic.documents import signature_doc, signature_from
from newswatch.core.times import iso, utc_now

SCHEMA = Path(__file__).with_name("spool.sql")
log = logging.getLogger("newswatch.core.store.elastic.cluster")  # the backend's one logger (see cluster.py)


@dataclass(frozen=True)
class QuarantinedRow:
    """A spool row that could not be read back: which table (kind) and key it had, its text, and why."""

    row: int
    kind: str
    key: str
    doc: str
    reason: str
    at: str


def _article_json(article: Article) -> str:
    return json.dumps(article.to_record(), ensure_ascii=False)


class Spool:
    """Articles, feed states and cluster signatures the cluster could not take yet, kept in order until it
    answers again.

    synchronous=FULL: an article acknowledged to the pipeline as spooled survives a power cut.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._db = open_database(self.path, SCHEMA, synchronous="FULL", what="Elasticsearch spool")
        # The pipeline writes from a worker thread and the spider reads from the reactor's: one lock.
        self._lock = threading.Lock()

    def _tx(self) -> Transaction:
        return Transaction(self._db, self._lock, f"Elasticsearch spool {self.path}")

    def add(self, articles: Sequence[Article]) -> None:
        """Append articles after everything already spooled, in one transaction."""
        with self._tx() as db:
            db.executemany("INSERT INTO articles (id, doc) VALUES (?, ?)", [(a.id, _article_json(a)) for a in articles])

    def oldest(self, limit: int) -> list[tuple[int, Article]]:
        """The ``limit`` oldest spooled articles with their spool sequence numbers; a row that cannot be read
        is quarantined (one warning) and the next ones are read instead."""
        while True:
            with self._lock:
                rows = self._db.execute("SELECT seq, doc FROM articles ORDER BY seq LIMIT ?", (limit,)).fetchall()
            read, bad = [], []
            for seq, doc in rows:
                try:
                    read.append((seq, Article.from_record(json.loads(doc))))
                except (ValueError, KeyError, TypeError) as exc:
                    bad.append((seq, doc, exc))
            if not bad:
                return read
            for seq, doc, exc in bad:
                self._quarantine("articles", "seq", seq, doc, exc)

    def _quarantine(self, table: str, key_column: str, key: object, doc: str, exc: Exception) -> None:
        """Move one unreadable row of ``table`` aside, so what follows it replays."""
        reason = f"{type(exc).__name__}: {exc}"[:300]
        with self._tx() as db:
            # Only the row as read: a good one written under the same key meanwhile stays.
            column = {"articles": "doc", "feed_state": "state", "signatures": "doc"}[table]
            db.execute(f"DELETE FROM {table} WHERE {key_column} = ? AND {column} = ?", (key, doc))
            row = db.execute(
                "INSERT INTO quarantine (kind, key, doc, reason, at) VALUES (?, ?, ?, ?, ?)",
                (table, str(key), doc, reason, iso(utc_now())),
            ).lastrowid
        log.warning("es_spool_quarantined spool=%s row=%d kind=%s key=%s reason=%s", self.path, row, table, key, reason)

    def quarantined(self) -> list[QuarantinedRow]:
        """Rows set aside because they could not be read, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT row, kind, key, doc, reason, at FROM quarantine ORDER BY row").fetchall()
        return [QuarantinedRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def drop_quarantined(self, rows: Iterable[int] | None = None) -> int:
        """Forget quarantined rows (all of them when ``rows`` is None); returns how many were dropped."""
        with self._tx() as db:
            if rows is None:
                return db.execute("DELETE FROM quarantine").rowcount
            return sum(db.execute("DELETE FROM quarantine WHERE row = ?", (r,)).rowcount for r in rows)

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget spooled articles once the cluster has them (or has refused them for good)."""
        with self._tx() as db:
            db.executemany("DELETE FROM articles WHERE seq = ?", [(s,) for s in seqs])

    def count(self) -> int:
        """How many articles wait in the spool."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    def ids(self, wanted: Iterable[str]) -> set[str]:
        """The subset of ``wanted`` article ids that wait in the spool."""
        with self._lock:
            return present_ids(self._db, "articles", wanted)

    def put_state(self, feed_id: str, state: FeedState) -> None:
        """Keep the latest state of one feed until the cluster takes it."""
        with self._tx() as db:
            put_feed_state(db, feed_id, state)

    def states(self) -> dict[str, FeedState]:
        """Every feed state waiting for the cluster, by feed id (an unreadable one is quarantined)."""
        with self._lock:
            rows = self._db.execute("SELECT feed_id, state FROM feed_state").fetchall()
        states = {}
        for feed_id, raw in rows:
            try:
                states[feed_id] = FeedState.from_json(json.loads(raw))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self._quarantine("feed_state", "feed_id", feed_id, raw, exc)
        return states

    def drop_state(self, feed_id: str, state: FeedState) -> None:
        """Forget a spooled feed state once written, unless a newer one was spooled meanwhile."""
        with self._tx() as db:
            if feed_states(db, feed_id).get(feed_id) == state:
                db.execute("DELETE FROM feed_state WHERE feed_id = ?", (feed_id,))

    def add_signatures(self, signatures: Sequence[ClusterSignature]) -> None:
        """Keep cluster signatures until the cluster takes them (the first one of an article stays)."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO signatures (article_id, doc) VALUES (?, ?)",
                [(s.article_id, json.dumps(signature_doc(s))) for s in signatures],
            )

    def waiting(self) -> tuple[int, int, int]:
        """How many articles, feed states and cluster signatures wait in the spool."""
        with self._lock:
            return tuple(
                self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("articles", "feed_state", "signatures")
            )

    def signature_count(self) -> int:
        """How many cluster signatures wait in the spool."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM signatures").fetchone()[0]

    def signatures(self) -> list[ClusterSignature]:
        """Every cluster signature waiting for the cluster."""
        with self._lock:
            rows = self._db.execute("SELECT article_id, doc FROM signatures ORDER BY rowid").fetchall()
        signatures = []
        for article_id, doc in rows:
            try:
                signatures.append(signature_from(json.loads(doc)))
            except (ValueError, KeyError, TypeError) as exc:
                self._quarantine("signatures", "article_id", article_id, doc, exc)
        return signatures

    def drop_signatures(self, article_ids: Iterable[str]) -> None:
        """Forget spooled signatures once the cluster has them."""
        with self._tx() as db:
            db.executemany("DELETE FROM signatures WHERE article_id = ?", [(i,) for i in article_ids])

    def reject(self, article: Article, reason: str) -> None:
        """Keep an article the cluster refused for good (a mapping error), for an operator to look at."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO rejected (id, doc, reason, at) VALUES (?, ?, ?, ?)",
                (article.id, _article_json(article), reason, iso(utc_now())),
            )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
