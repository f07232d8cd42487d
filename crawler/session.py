"""One crawl's open resources: the loaded config, the store, the open feed runs and the clusterer.

The spider creates it from the config it is given (or loads from NEWSWATCH_CONFIG_DIR under `scrapy crawl`)
and the pipelines take it from the spider in ``from_crawler``: config is loaded once per crawl process. Its
frontier (crawler.frontier) says which feeds, hosts and pages are this crawler's when several share the work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from crawler.clusters import WINDOW, Clusterer
from crawler.frontier import LocalFrontier, RedisFrontier
from crawler.polling.run import FeedRun, FeedRuns
from newswatch.core.config import Config
from newswatch.core.errors import NewswatchError
from newswatch.core.models import Article, ClusterSignature
from newswatch.core.store import Store
from newswatch.core.times import utc_now

log = logging.getLogger(__name__)


@dataclass
class CrawlSession:
    """The config, open store, frontier, open feed runs and near-duplicate clusterer of one crawl."""

    config: Config
    store: Store
    frontier: LocalFrontier | RedisFrontier = field(default_factory=LocalFrontier)
    runs: FeedRuns = field(default_factory=FeedRuns)
    _clusterer: Clusterer | None = None

    @property
    def clusterer(self) -> Clusterer:
        """The clusterer, made at first use."""
        if self._clusterer is None:
            self._clusterer = Clusterer(self.store, now=utc_now())
        return self._clusterer

    def new_signatures(self) -> list[ClusterSignature]:
        """The cluster signatures made since the last call (none when nothing was clustered yet)."""
        return self._clusterer.take_new() if self._clusterer is not None else []

    def commit(self, run: FeedRun) -> None:
        """Save the state of a finished feed run (everything it led to is stored by now)."""
        state = run.state()
        self.store.set_feed_state(run.feed.id, state)
        self.frontier.feed_done(run.feed.id)
        log.info(
            "feed_done feed=%s items=%d new=%d next_due=%s",
            run.feed.id,
            state.last_items,
            run.new_items,
            state.next_due.isoformat() if state.next_due else None,
        )

    def articles_stored(self, articles: list[Article]) -> None:
        """A batch is in the store: the claims on its pages go (the store's seen set has them now)."""
        self.frontier.pages_done(article.id for article in articles)

    def close(self) -> None:
        """Give the frontier's holds back, drop the signatures past the clustering window (a crawl that
        clustered anything: the store only grows by what a crawl adds), then close the store. A store that
        cannot prune now does it next time."""
        self.frontier.close()
        if self._clusterer is not None:
            try:
                dropped = self.store.prune_signatures(self._clusterer.now - WINDOW)
                log.info("cluster_signatures_pruned count=%d", dropped)
            except NewswatchError as exc:
                log.warning("cluster_signatures_prune_failed reason=%s", exc)
        self.store.close()
