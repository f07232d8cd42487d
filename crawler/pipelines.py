"""StorePipeline: write articles to the store in batches, by count and by age (docs/architecture.md)."""

from __future__ import annotations

import asyncio
import logging
import time

from scrapy.crawler import Crawler
from twisted.internet import task

from crawler.context import crawl_context
from newswatch.models import Article
from newswatch.store import Store

log = logging.getLogger(__name__)


class StorePipeline:
    """Buffers articles and writes each batch with one ``store.add_articles`` call off the reactor thread.

    A killed crawl loses at most the unwritten batch, and those articles are not in the seen set either, so
    the next crawl fetches them again: nothing is lost, nothing is stored twice.
    """

    def __init__(self, store: Store, batch_size: int = 100, flush_seconds: float = 5.0, stats=None):
        self.store, self.batch_size, self.flush_seconds, self.stats = store, batch_size, flush_seconds, stats
        self.batch: list[Article] = []
        self.batch_started = 0.0
        self._timer: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        return cls(
            crawl_context(crawler).store,
            batch_size=settings.getint("NEWSWATCH_BATCH_SIZE", 100),
            flush_seconds=settings.getfloat("NEWSWATCH_FLUSH_SECONDS", 5.0),
            stats=crawler.stats,
        )

    def open_spider(self) -> None:
        # A quiet period must not leave a partial batch waiting: flush it on a timer too.
        self._timer = task.LoopingCall(self._flush_if_old)
        self._timer.start(max(self.flush_seconds / 2, 0.1), now=False)

    async def process_item(self, item):
        if not isinstance(item, Article):
            return item
        if not self.batch:
            self.batch_started = time.monotonic()
        self.batch.append(item)
        if len(self.batch) >= self.batch_size:
            await self.flush()
        return item

    async def _flush_if_old(self) -> None:
        if self.batch and time.monotonic() - self.batch_started >= self.flush_seconds:
            await self.flush()

    async def flush(self) -> None:
        """Write the buffered batch; the store's own errors (e.g. spooling) are its business."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        # The store may block (retries, fsync); keep the reactor responsive.
        written = await asyncio.to_thread(self.store.add_articles, batch)
        log.info("articles_stored count=%d changed=%d", len(batch), written)
        if self.stats:
            self.stats.inc_value("newswatch/articles/stored", len(batch))
            self.stats.inc_value("newswatch/articles/changed", written)

    async def close_spider(self) -> None:
        if self._timer and self._timer.running:
            self._timer.stop()
        await self.flush()
