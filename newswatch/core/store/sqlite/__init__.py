"""The embedded default store: one SQLite file with FTS5 full-text search (docs/storage.md)."""

from newswatch.core.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
