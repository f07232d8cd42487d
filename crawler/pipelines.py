"""ClusterPipeline (near-duplicates share a cluster_id) and StorePipeline (batched writes, then feed states)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.polling.run import FeedRun, FeedRuns
from crawler.session import CrawlSession
from newswatch.core.errors import StoreUnavailable
from newswatch.core.models import Article, ClusterSignature
from newswatch.core.store import Store

log = logging.getLogger(__name__)
# A Scrapy signal the spider sends when it waits for other crawlers of a shared cycle: they may be waiting for
# feeds of this one whose articles sit in a partial batch, so the batch is written now, not at its timer.
FLUSH_NOW = object()


class ClusterPipeline:
    """Sets ``cluster_id`` on each article (crawler.clusters): the id of the first copy of its story seen."""

    def __init__(self, session: CrawlSession):
        self.session = session

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterPipeline:
        return cls(crawler.spider.session)

    def process_item(self, item):
        if not isinstance(item, Article):
            return item
        cluster = self.session.clusterer.assign(item.id, item.url, item.text)
        if cluster != item.id:
            log.info("article_clustered feed=%s url=%s cluster=%s", item.feed_id, item.url, cluster)
        return dataclasses.replace(item, cluster_id=cluster)


class StorePipeline:
    """Buffers articles and writes each batch with one ``store.add_articles`` call off the reactor thread.

    After each batch, the feeds whose every article is now stored get their new state saved (see
    crawler.polling.run): a killed crawl loses at most the unwritten batch, and the next crawl polls those
    feeds again and fetches exactly what is missing: nothing is lost, nothing is stored twice.
    ``signatures`` gives, on the reactor thread, the cluster signatures made since the last batch; they are
    stored before the batch's articles, so every stored article has its signature saved.

    A write the store refuses (disk full, read-only file) is one ``store_write_failed`` line, and
    ``on_failure`` (the crawl stops): its feeds are not marked done, so a later crawl fetches them again.
    """

    def __init__(
        self,
        store: Store,
        batch_size: int = 100,
        flush_seconds: float = 5.0,
        stats=None,
        runs: FeedRuns | None = None,
        commit: Callable[[FeedRun], None] | None = None,
        signatures: Callable[[], list[ClusterSignature]] | None = None,
        on_failure: Callable[[str], object] | None = None,
        on_stored: Callable[[list[Article]], None] | None = None,
    ):
        self.store, self.batch_size, self.flush_seconds, self.stats = store, batch_size, flush_seconds, stats
        self.runs, self.commit, self.signatures = runs or FeedRuns(), commit, signatures
        self.on_failure, self.failure, self.on_stored = on_failure, None, on_stored
        self.batch: list[Article] = []
        self.batch_started = 0.0
        self._timer: task.LoopingCall | None = None
        # One flush at a time: close_spider must wait for a timer flush still writing (or committing feed
        # states), or the store closes under it and a finished feed's state is never saved.
        self._flushing = asyncio.Lock()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings, session = crawler.settings, crawler.spider.session
        pipeline = cls(
            session.store,
            batch_size=settings.getint("NEWSWATCH_BATCH_SIZE", 100),
            flush_seconds=settings.getfloat("NEWSWATCH_FLUSH_SECONDS", 5.0),
            stats=crawler.stats,
            runs=session.runs,
            commit=session.commit,
            signatures=session.new_signatures,
            on_stored=session.articles_stored,  # the pages' claims of a shared frontier go
            # Scheduled, not awaited: closing waits for the items in progress, this one among them.
            on_failure=lambda reason: deferred_from_coro(crawler.engine.close_spider_async(reason="store_failed")),
        )
        crawler.signals.connect(pipeline.flush_now, signal=FLUSH_NOW)
        return pipeline

    def flush_now(self) -> None:
        """Write the partial batch now (FLUSH_NOW), in the background; nothing when it is empty."""
        if self.batch:
            deferred_from_coro(self.flush())

    def open_spider(self) -> None:
        # A quiet period must not leave a partial batch waiting: flush it on a timer too.
        # Wrapped as an asyncio future: flush awaits asyncio.to_thread, which a bare coroutine run by
        # Twisted's LoopingCall cannot ("await wasn't used with future").
        self._timer = task.LoopingCall(lambda: deferred_from_coro(self._flush_if_old()))
        self._timer.start(max(self.flush_seconds / 2, 0.05), now=False)

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
        """Write the buffered batch, then save the state of each feed it completes."""
        async with self._flushing:
            batch, self.batch = self.batch, []
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[Article]) -> None:
        if self.failure is not None:  # the store refused a write: this crawl writes nothing more
            return
        signatures = self.signatures() if self.signatures is not None else []
        try:
            # The store may block (retries, fsync); keep the reactor responsive.
            written = await asyncio.to_thread(self._add_to_store, signatures, batch)
            log.info("articles_stored count=%d changed=%d", len(batch), written)
            if self.on_stored is not None:
                await asyncio.to_thread(self.on_stored, batch)  # Redis may be slow or away: off the reactor
            if self.stats:
                self.stats.inc_value("newswatch/articles/stored", len(batch))
                self.stats.inc_value("newswatch/articles/changed", written)
            for run in self.runs.stored(batch):  # on the reactor thread: FeedRuns is not shared with threads
                if self.commit is not None:
                    await asyncio.to_thread(self.commit, run)
        except StoreUnavailable as exc:
            self._failed(str(exc), len(batch))

    def _failed(self, reason: str, articles: int) -> None:
        self.failure = reason
        log.error("store_write_failed articles=%d reason=%s (the crawl stops)", articles, reason)
        if self.stats:
            self.stats.set_value("newswatch/store/failed", reason)
        if self.on_failure is not None:
            self.on_failure(reason)

    def _add_to_store(self, signatures: list[ClusterSignature], batch: list[Article]) -> int:
        if signatures:
            self.store.add_signatures(signatures)
        return self.store.add_articles(batch)

    async def close_spider(self) -> None:
        if self._timer and self._timer.running:
            self._timer.stop()
        await self.flush()
