"""SQLite files as both backends keep them (the store, the Elasticsearch spool): opening, transactions, feed states."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from newswatch.core.errors import StoreUnavailable
from newswatch.core.feedstate import FeedState

_IDS_PER_QUERY = 500  # below SQLite's limit on the parameters of one statement


def open_database(path: Path, schema: Path, *, synchronous: Literal["NORMAL", "FULL"], what: str) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder), in WAL mode, its idempotent ``schema`` applied.

    ``check_same_thread=False``: Scrapy pipelines write from a worker thread, so every user serializes its
    calls with a lock of its own. Raises StoreUnavailable naming ``what`` the file is, and why it cannot open.
    The file holds what digests say, as the .eml files do: only its owner may read it (0600, in a 0700
    folder when newswatch creates the folder); SQLite gives its -wal and -shm files the same mode.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
        db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        # Before the first table: a new file gives pages freed by a prune back with PRAGMA incremental_vacuum
        # (a file created by an older version keeps its setting, and reuses freed pages instead).
        if db.execute("PRAGMA page_count").fetchone()[0] == 0:  # a new file only: no write to an existing one
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema.read_text(encoding="utf-8"))
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"{what} {path}: {exc}") from None
    return db


def open_reader(path: Path, *, what: str) -> sqlite3.Connection:
    """A second, read-only connection to the WAL file ``path`` (open_database made it): it reads the last
    commit while the first connection writes, instead of waiting for that connection's lock."""
    try:
        db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"{what} {path}: {exc}") from None
    return db


class Transaction:
    """``with`` block: one IMMEDIATE transaction under ``lock``; committed at the end, rolled back on error.

    A write the file refuses (disk full, file too large, read-only, I/O error) is StoreUnavailable naming
    ``what`` and the reason: one line for the user, and the caller's signal that nothing was written.
    Constraint violations stay sqlite3.IntegrityError, for the caller to interpret.
    """

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock | threading.Lock, what: str):
        self.db, self.lock, self.what = db, lock, what

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self.lock.release()
            raise StoreUnavailable(f"{self.what}: {exc}") from None
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, exc_type, exc, _tb) -> bool:
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            elif self.db.in_transaction:
                self.db.execute("ROLLBACK")
        except sqlite3.Error as failure:
            with contextlib.suppress(sqlite3.Error):
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            raise StoreUnavailable(f"{self.what}: {failure}") from None
        finally:
            self.lock.release()
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreUnavailable(f"{self.what}: {exc}") from None
        return False


def present_ids(db: sqlite3.Connection, table: str, ids: Iterable[str]) -> set[str]:
    """The subset of ``ids`` found in the ``id`` column of ``table``, asked a chunk of ids at a time."""
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        found.update(row[0] for row in db.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk))
    return found


def put_feed_state(db: sqlite3.Connection, feed_id: str, state: FeedState) -> None:
    """Replace one feed's row of a ``feed_state`` table (feed_id, state as JSON), inside the caller's transaction."""
    db.execute(
        "INSERT INTO feed_state (feed_id, state) VALUES (?, ?) ON CONFLICT(feed_id) DO UPDATE SET state=excluded.state",
        (feed_id, json.dumps(state.to_json())),
    )


def feed_states(db: sqlite3.Connection, feed_id: str | None = None) -> dict[str, FeedState]:
    """The rows of a ``feed_state`` table (only ``feed_id``'s when given), by feed id."""
    where, args = ("WHERE feed_id = ?", (feed_id,)) if feed_id is not None else ("", ())
    rows = db.execute(f"SELECT feed_id, state FROM feed_state {where}", args).fetchall()
    return {row[0]: FeedState.from_json(json.loads(row[1])) for row in rows}
