"""Durable on-disk spool of writes waiting for Elasticsearch: one SQLite file, replayed oldest first."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from newswatch.core.feedstate import FeedState
from newswatch.core.models import Article, ClusterSignature
from newswatch.core.store.database import Transaction, feed_states, open_database, present_ids, put_feed_state
from newswatch.core.store.elastic.documents import signature_doc, signature_from
from newswatch.core.times import iso, utc_now

SCHEMA = Path(__file__).with_name("spool.sql")


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
        return Transaction(self._db, self._lock)

    def add(self, articles: Sequence[Article]) -> None:
        """Append articles after everything already spooled, in one transaction."""
        with self._tx() as db:
            db.executemany("INSERT INTO articles (id, doc) VALUES (?, ?)", [(a.id, _article_json(a)) for a in articles])

    def oldest(self, limit: int) -> list[tuple[int, Article]]:
        """The ``limit`` oldest spooled articles with their spool sequence numbers."""
        with self._lock:
            rows = self._db.execute("SELECT seq, doc FROM articles ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(seq, Article.from_record(json.loads(doc))) for seq, doc in rows]

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
        """Every feed state waiting for the cluster, by feed id."""
        with self._lock:
            return feed_states(self._db)

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
            rows = self._db.execute("SELECT doc FROM signatures ORDER BY rowid").fetchall()
        return [signature_from(json.loads(doc)) for (doc,) in rows]

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
