"""StorePipeline: the end of a crawl waits for a batch the flush timer is still writing."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from crawler.pipelines import StorePipeline
from crawler.polling.run import FeedRun, FeedRuns
from newswatch.core.config.feeds import Feed
from newswatch.core.models import Article
from newswatch.core.store.sqlite import SqliteStore


class SlowDiskStore(SqliteStore):
    """A real SQLite store whose batch write waits for ``release``: a slow disk, which a test cannot cause
    on demand, so this one fault is simulated."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.writing, self.release = threading.Event(), threading.Event()

    def add_articles(self, articles):
        self.writing.set()
        self.release.wait(10)
        return super().add_articles(articles)


def test_close_waits_for_the_timer_flush_then_saves_the_feed_state(tmp_path: Path):
    """The timer's flush is mid-write when the spider closes: close_spider returns only once that batch is
    stored and the feed it completes has its state saved, so the store is never closed under it."""
    store = SlowDiskStore(tmp_path / "newswatch.db")
    feed = Feed(name="Slow", url="https://slow.example/feed.xml")
    runs = FeedRuns()
    runs.start(FeedRun(feed=feed, prior=None, started=datetime(2026, 11, 20, tzinfo=UTC), units=2))
    runs.close(feed.id)  # the feed request itself is done; one article is open

    def commit(run: FeedRun) -> None:
        store.set_feed_state(run.feed.id, run.state())

    pipeline = StorePipeline(store, batch_size=100, flush_seconds=0, runs=runs, commit=commit)
    article = Article(
        id="a1", url="https://slow.example/1", title="T", text="Deir Ezzor", feed_id=feed.id, outlet="Slow"
    )

    async def crawl_end():
        await pipeline.process_item(article)
        timer_flush = asyncio.ensure_future(pipeline._flush_if_old())
        await asyncio.to_thread(store.writing.wait, 10)
        closing = asyncio.ensure_future(pipeline.close_spider())
        await asyncio.sleep(0.2)
        assert not closing.done()  # still waiting for the timer's batch
        store.release.set()
        await closing
        assert timer_flush.done()

    asyncio.run(crawl_end())
    assert store.count_articles() == 1
    assert store.get_feed_state(feed.id).last_items == 0
    store.close()
