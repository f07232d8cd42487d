"""SQLite specifics: a hit can be queued for a recipient once; a second pass's digest is refused cleanly; a
file of an older version gets its mention counts counted again, at the hour each article was first stored; the
crawl's reads have a connection of their own."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from newswatch.core.errors import StoreConflict
from newswatch.core.models import Article, ClusterSignature, Hit, QueuedDigest
from newswatch.core.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class Abandoned(Exception):
    """Ends a transaction a test holds open (rolled back)."""


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


def test_mention_counts_of_an_older_version_are_counted_again_by_fetched(tmp_path, caplog):
    """A file whose mention counts an older version kept at published (PRAGMA user_version 0) has them
    counted again once at open, at the hour each article was first stored; later opens leave them alone."""
    path = tmp_path / "nw.db"
    fetched, published = NOW, NOW - timedelta(days=3)
    with SqliteStore(path) as store:
        store.add_articles(
            [
                Article(
                    id=f"a{n}",
                    url=f"https://x.example/{n}",
                    title="Raqqa",
                    text="Raqqa today.",
                    feed_id="f",
                    outlet="X",
                    published=published,
                    fetched=fetched + timedelta(hours=n),
                )
                for n in (1, 2)
            ]
        )
        store.add_hits([Hit("a1", "Raqqa", "Raqqa", 0, 5), Hit("a2", "Raqqa", "Raqqa", 0, 5)], NOW)
    with sqlite3.connect(path) as db:  # as the older version left it: counted at published
        db.execute("DELETE FROM mention_hours")
        db.execute("INSERT INTO mention_hours VALUES ('Raqqa', ?, 2)", (published.isoformat(),))
        db.execute("PRAGMA user_version = 0")
    db.close()
    caplog.set_level(logging.INFO, "newswatch.core.store")
    with SqliteStore(path) as store:
        assert store.mention_counts("Raqqa", NOW - timedelta(days=7)) == {
            NOW + timedelta(hours=1): 1,
            NOW + timedelta(hours=2): 1,
        }
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert caplog.text.count("store_mention_counts_built") == 1
    caplog.clear()
    with SqliteStore(path) as store:
        assert sum(store.mention_counts("Raqqa", NOW - timedelta(days=7)).values()) == 2
    assert "store_mention_counts_built" not in caplog.text


def test_a_new_file_needs_no_counting_again(tmp_path, caplog):
    """A new file is marked as counting by fetched from the start: nothing is rebuilt at its next open."""
    caplog.set_level(logging.INFO, "newswatch.core.store")
    with SqliteStore(tmp_path / "nw.db") as store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == 1
        store.add_articles(
            [Article(id="a1", url="https://x.example/1", title="T", text="Raqqa.", feed_id="f", outlet="X")]
        )
        store.add_hits([Hit("a1", "Raqqa", "Raqqa", 0, 5)], NOW)
    with SqliteStore(tmp_path / "nw.db"):
        pass
    assert "store_mention_counts_built" not in caplog.text


def test_the_crawls_reads_do_not_wait_for_a_write_in_progress(tmp_path):
    """known_ids and similar_signatures (the crawl's reads on its reactor thread) read the last commit on a
    connection of their own while the pipeline's thread holds the store for a batch it writes: behind that
    lock the reactor waited out every batch."""
    store = SqliteStore(tmp_path / "newswatch.db")
    stored = Article(id="a1", url="https://x.example/1", title="Raqqa", text="Raqqa today.", feed_id="f", outlet="X")
    store.add_articles([stored])
    store.add_signatures([ClusterSignature("a1", "a1", stored.url, NOW, bytes(range(256)) * 2)])
    writing, release = threading.Event(), threading.Event()

    def write_slowly():
        # The pipeline's transaction, held open as a large batch would hold it, then rolled back.
        with contextlib.suppress(Abandoned), store._tx() as db:
            db.execute("DELETE FROM articles WHERE id = 'a1'")
            writing.set()
            release.wait(30)
            raise Abandoned

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        assert writing.wait(10)
        started = time.monotonic()
        assert store.known_ids(["a1", "a2"]) == {"a1"}  # the last commit, not the delete in progress
        assert [s.article_id for s in store.similar_signatures("a2", stored.url, (), NOW)] == ["a1"]
        assert time.monotonic() - started < 5  # would be 30 s behind the writer's lock
    finally:
        release.set()
        writer.join()
        store.close()
