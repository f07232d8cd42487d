"""SQLite specifics: a hit can be queued for a recipient once; a second pass's digest is refused cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newswatch.core.errors import StoreConflict
from newswatch.core.models import Article, Hit, QueuedDigest
from newswatch.core.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_second_digest_with_the_same_hits_is_a_store_conflict(tmp_path):
    """Two passes queuing the same hit for one recipient: the second gets StoreConflict and nothing changes."""
    store = SqliteStore(tmp_path / "nw.db")
    store.add_articles(
        [Article(id="a1", url="https://x.example/1", title="Raqqa", text="Raqqa today.", feed_id="f", outlet="X")]
    )
    hit = Hit("a1", "Raqqa", "Raqqa", 0, 5)
    store.add_hits([hit], NOW)
    first = QueuedDigest(id="<d1@x>", recipient="ana", hit_keys=(hit.key,), message=b"m1", created=NOW)
    second = QueuedDigest(id="<d2@x>", recipient="ana", hit_keys=(hit.key,), message=b"m2", created=NOW)
    store.queue_digest(first)
    with pytest.raises(StoreConflict, match="already queued for ana"):
        store.queue_digest(second)
    assert [d.id for d in store.pending_digests()] == ["<d1@x>"]
