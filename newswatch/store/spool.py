"""Durable on-disk spool of writes waiting for Elasticsearch: one SQLite file, replayed oldest first."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from newswatch.errors import StoreUnavailable
from newswatch.models import Article

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS articles_id ON articles(id);
CREATE TABLE IF NOT EXISTS feed_state (feed_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id TEXT NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
"""


def article_to_json(article: Article) -> str:
    """An Article as one JSON text (dates in ISO 8601)."""
    values = asdict(article)
    for name in ("published", "fetched"):
        values[name] = values[name].isoformat() if values[name] else None
    return json.dumps(values, ensure_ascii=False)


def article_from_json(text: str) -> Article:
    """The Article written by :func:`article_to_json`."""
    values = json.loads(text)
    for name in ("published", "fetched"):
        values[name] = datetime.fromisoformat(values[name]) if values[name] else None
    return Article(**values)


class Spool:
    """Articles and feed states the cluster could not take yet, kept in order until it answers again.

    synchronous=FULL: an article acknowledged to the pipeline as spooled survives a power cut.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The pipeline writes from a worker thread and the spider reads from the reactor's: one lock.
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"Elasticsearch spool {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def add(self, articles: Sequence[Article]) -> None:
        """Append articles after everything already spooled, in one transaction."""
        rows = [(a.id, article_to_json(a)) for a in articles]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO articles (id, doc) VALUES (?, ?)", rows)

    def oldest(self, limit: int) -> list[tuple[int, Article]]:
        """The ``limit`` oldest spooled articles with their spool sequence numbers."""
        with self._lock:
            rows = self._db.execute("SELECT seq, doc FROM articles ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(seq, article_from_json(doc)) for seq, doc in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget spooled articles once the cluster has them (or has refused them for good)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM articles WHERE seq = ?", [(s,) for s in seqs])

    def count(self) -> int:
        """How many articles wait in the spool."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    def ids(self, wanted: Iterable[str]) -> set[str]:
        """The subset of ``wanted`` article ids that wait in the spool."""
        wanted = list(dict.fromkeys(wanted))
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(r[0] for r in self._db.execute(f"SELECT id FROM articles WHERE id IN ({marks})", chunk))
        return found

    def put_state(self, feed_id: str, state: dict) -> None:
        """Keep the latest state of one feed until the cluster takes it."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO feed_state (feed_id, state) VALUES (?, ?) "
                "ON CONFLICT(feed_id) DO UPDATE SET state=excluded.state",
                (feed_id, json.dumps(state, default=str)),
            )

    def states(self) -> dict[str, dict]:
        """Every feed state waiting for the cluster, by feed id."""
        with self._lock:
            rows = self._db.execute("SELECT feed_id, state FROM feed_state").fetchall()
        return {feed_id: json.loads(state) for feed_id, state in rows}

    def drop_state(self, feed_id: str, state: dict) -> None:
        """Forget a spooled feed state once written, unless a newer one was spooled meanwhile."""
        with self._lock, self._db:
            self._db.execute(
                "DELETE FROM feed_state WHERE feed_id = ? AND state = ?", (feed_id, json.dumps(state, default=str))
            )

    def reject(self, article: Article, reason: str) -> None:
        """Keep an article the cluster refused for good (a mapping error), for an operator to look at."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO rejected (id, doc, reason, at) VALUES (?, ?, ?, ?)",
                (article.id, article_to_json(article), reason, datetime.now(timezone.utc).isoformat()),
            )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
