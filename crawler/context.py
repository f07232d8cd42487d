"""One config + store per crawl, shared by the spider and the pipeline through the crawler object."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from scrapy import signals
from scrapy.crawler import Crawler

from crawler.clusters import Clusterer
from crawler.feedrun import FeedRun, FeedRuns
from newswatch.config import Config, load_config
from newswatch.store import Store, open_store

log = logging.getLogger(__name__)

_ATTR = "_newswatch_context"


@dataclass
class CrawlContext:
    """The loaded config, the open store, the open feed runs and the clusterer of one crawl."""

    config: Config
    store: Store
    runs: FeedRuns = field(default_factory=FeedRuns)
    _clusterer: Clusterer | None = None

    @property
    def clusterer(self) -> Clusterer:
        """The near-duplicate clusterer, its sidecar file opened at first use (var_dir/crawler/clusters.db)."""
        if self._clusterer is None:
            path = self.config.path(self.config.settings.var_dir) / "crawler" / "clusters.db"
            self._clusterer = Clusterer(path, now=datetime.now(timezone.utc))
        return self._clusterer

    def save_clusters(self) -> None:
        """Commit the clusterer's pending signatures (before a batch of articles is stored), if it is open."""
        if self._clusterer is not None:
            self._clusterer.commit()

    def commit(self, run: FeedRun) -> None:
        """Save the state of a finished feed run (everything it led to is stored by now)."""
        state = run.state()
        self.store.set_feed_state(run.feed.id, state)
        log.info("feed_done feed=%s items=%d new=%d next_due=%s", run.feed.id, state["last_items"],
                 run.new_items, state["next_due"])

    def close(self) -> None:
        """Close the clusterer's sidecar file and the store."""
        if self._clusterer is not None:
            self._clusterer.close()
        self.store.close()


def crawl_context(crawler: Crawler) -> CrawlContext:
    """The crawl's context, created at first use from the NEWSWATCH_CONFIG_DIR setting, closed at the end.

    Raises ConfigError or StoreUnavailable; the CLI validates both before starting a crawl.
    """
    context = getattr(crawler, _ATTR, None)
    if context is None:
        config = load_config(crawler.settings.get("NEWSWATCH_CONFIG_DIR"))
        context = CrawlContext(config=config, store=open_store(config))
        setattr(crawler, _ATTR, context)
        # Connected last so the pipeline's close_spider (which flushes) runs before the store closes.
        crawler.signals.connect(context.close, signal=signals.engine_stopped, weak=False)
    return context
