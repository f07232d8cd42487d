"""CrawlReport: one summary line per crawl, from the crawl's stats; Scrapy's duplicate refusal lines muted."""

from __future__ import annotations

import logging

from scrapy import signals
from scrapy.crawler import Crawler

log = logging.getLogger(__name__)
# Scrapy logs these refusals itself (size limit, decompression bomb) before the request's errback runs; the
# spider logs each failure once, with the feed and the reason, so theirs would be a second line.
_DUPLICATE_LOGGERS = (
    "scrapy.core.downloader.handlers.http11",
    "scrapy.downloadermiddlewares.httpcompression",
    "scrapy.downloadermiddlewares.redirect",
)


class CrawlReport:
    """Logs ``crawl_finished`` with feed and article counts and the close reason."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        for name in _DUPLICATE_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlReport:
        return cls(crawler)

    def spider_closed(self, spider, reason: str) -> None:
        stats = self.crawler.stats
        log.info(
            "crawl_finished reason=%s feeds_ok=%d feeds_unchanged=%d feeds_failed=%d articles=%d from_feed=%d pages=%d",
            reason,
            stats.get_value("newswatch/feeds/ok", 0),
            stats.get_value("newswatch/feeds/unchanged", 0),
            stats.get_value("newswatch/feeds/failed", 0),
            stats.get_value("newswatch/articles/stored", 0),
            stats.get_value("newswatch/articles/from_feed", 0),
            stats.get_value("response_received_count", 0),
        )
