"""One config + store per crawl, shared by the spider and the pipeline through the crawler object."""

from __future__ import annotations

from dataclasses import dataclass

from scrapy import signals
from scrapy.crawler import Crawler

from newswatch.config import Config, load_config
from newswatch.store import Store, open_store

_ATTR = "_newswatch_context"


@dataclass
class CrawlContext:
    """The loaded config and the open store of one crawl."""

    config: Config
    store: Store


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
        crawler.signals.connect(lambda: context.store.close(), signal=signals.engine_stopped, weak=False)
    return context
