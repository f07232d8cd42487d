"""The article store: one small interface, with SQLite (default) and Elasticsearch backends (docs/storage.md).

The crawler writes articles and its per-feed state; the alerts side reads articles after a cursor, writes
hits, and queues/marks digests. Both backends pass the same contract tests (tests/test_store_contract.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from newswatch.models import Article, Hit, OwedHit, QueuedDigest, SearchResult

if TYPE_CHECKING:
    from newswatch.config import Config

__all__ = ["Store", "open_store"]


class Store(Protocol):
    """What both halves of newswatch need from storage. Every write is idempotent."""

    # -- crawler side
    def add_articles(self, articles: Sequence[Article]) -> int:
        """Upsert a batch by ``Article.id``; returns how many were new or changed. Keeps first ``fetched``."""

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` already stored (the crawler's seen set)."""

    def get_article(self, article_id: str) -> Article | None:
        """One article by id, or None."""

    def get_feed_state(self, feed_id: str) -> dict | None:
        """The crawler's remembered state of one feed (validators, body hash, schedule), or None."""

    def set_feed_state(self, feed_id: str, state: dict) -> None:
        """Replace the remembered state of one feed."""

    def all_feed_states(self) -> dict[str, dict]:
        """Every remembered feed state, by feed id."""

    # -- search
    def search(
        self, query: str, *, since: datetime | None = None, watch: str | None = None, limit: int = 20
    ) -> list[SearchResult]:
        """Full-text search, newest first among equals; ``watch`` keeps articles with a hit of that watch."""

    # -- alerts side
    def articles_after(self, cursor: str | None, limit: int = 500) -> tuple[list[Article], str | None]:
        """Articles written or changed after ``cursor`` (None: from the start), oldest first, and the cursor
        to resume from (unchanged when nothing is new)."""

    def get_cursor(self, name: str) -> str | None:
        """A named cursor's saved value."""

    def set_cursor(self, name: str, value: str | None) -> None:
        """Save a named cursor."""

    def add_hits(self, hits: Sequence[Hit], found: datetime) -> int:
        """Store hits, ignoring ones already stored (by ``Hit.key``); returns how many were new."""

    def owed_hits(self, recipient: str, watches: Collection[str] | None = None) -> list[OwedHit]:
        """Hits of ``watches`` (None: all) not yet put in any digest for ``recipient``, and of an article and
        watch none of whose hits was: a story is owed once per watch, however often its text changes (its
        page replacing the feed item it was first stored from, an update)."""

    def mention_times(self, watch: str, since: datetime) -> list[datetime]:
        """One time per distinct article with a hit of ``watch``: its ``published``, else ``fetched``; only
        times at or after ``since``, oldest first (digest trends)."""

    def queue_digest(self, digest: QueuedDigest) -> None:
        """Persist a rendered digest and assign its hits to it, atomically, before it is sent."""

    def pending_digests(self) -> list[QueuedDigest]:
        """Queued digests not yet accepted by the mail server, oldest first."""

    def mark_digest_sent(self, digest_id: str, when: datetime) -> None:
        """Record that the server accepted the digest (the ledger entry)."""

    def note_digest_failure(self, digest_id: str, error: str, next_attempt: datetime) -> None:
        """Count a failed attempt and when to retry."""

    def sent_digests(self, limit: int = 50) -> list[QueuedDigest]:
        """The most recently sent digests, newest first."""

    def count_articles(self) -> int:
        """How many articles are stored."""

    def close(self) -> None:
        """Flush and release resources."""


def open_store(config: Config) -> Store:
    """Open the configured backend; raises StoreUnavailable when it cannot be reached."""
    storage = config.settings.storage
    if storage.backend == "elasticsearch":
        from newswatch.store.elastic import ElasticStore

        return ElasticStore.from_config(config)
    from newswatch.store.sqlite import SqliteStore

    return SqliteStore(config.path(storage.sqlite.path))
