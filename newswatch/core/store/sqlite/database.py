"""Opening a SQLite file the way newswatch uses them (WAL, a schema file run at every open), and transactions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Literal

from newswatch.core.errors import StoreUnavailable


def open_database(path: Path, schema: Path, *, synchronous: Literal["NORMAL", "FULL"], what: str) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder), in WAL mode, its idempotent ``schema`` applied.

    ``check_same_thread=False``: Scrapy pipelines write from a worker thread, so every user serializes its
    calls with a lock of its own. Raises StoreUnavailable naming ``what`` the file is, and why it cannot open.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema.read_text(encoding="utf-8"))
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"{what} {path}: {exc}") from None
    return db


class Transaction:
    """``with`` block: one IMMEDIATE transaction under ``lock``; committed at the end, rolled back on error."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock | threading.Lock):
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, exc_type, *_) -> bool:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
        return False
