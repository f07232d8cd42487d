"""The `feeds` spider: fetch each configured feed, follow unseen items, yield Articles. Logic lives elsewhere."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import scrapy
from twisted.python.failure import Failure

from crawler.articles import article_from_entry, article_from_page, entry_article_id
from crawler.charset import decode_html
from crawler.context import crawl_context
from crawler.feeds import parse_feed
from crawler.feedstate import record_failure, record_success
from crawler.scrapy_settings import apply_config
from newswatch.config import Feed, load_config
from newswatch.errors import NewswatchError
from newswatch.models import FeedEntry

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def failure_reason(failure: Failure) -> str:
    """One human line for a failed request: HTTP status, timeout, DNS or connection error."""
    response = getattr(failure.value, "response", None)
    if response is not None:
        return f"HTTP {response.status}"
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}".strip()


class FeedsSpider(scrapy.Spider):
    """Crawl every enabled feed of config/feeds.yaml (or only ``-a feed=ID``)."""

    name = "feeds"

    def __init__(self, feed: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.only_feed = feed

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        apply_config(settings, load_config(settings.get("NEWSWATCH_CONFIG_DIR")))

    async def start(self):
        context = crawl_context(self.crawler)
        for feed in context.config.feeds:
            if feed.enabled and self.only_feed in (None, feed.id):
                yield scrapy.Request(
                    feed.url, callback=self.parse_feed, errback=self.feed_failed,
                    cb_kwargs={"feed": feed}, meta={"feed_id": feed.id}, dont_filter=True,
                )

    def parse_feed(self, response, feed: Feed):
        store = crawl_context(self.crawler).store
        try:
            entries = parse_feed(response.body, response.url)
        except NewswatchError as exc:
            self._remember_failure(feed, str(exc))
            return
        known = store.known_ids(entry_article_id(e) for e in entries)
        unseen = [e for e in entries if entry_article_id(e) not in known]
        store.set_feed_state(
            feed.id,
            record_success(store.get_feed_state(feed.id), name=feed.name, now=_now(), items=len(entries),
                           new_items=len(unseen)),
        )
        log.info("feed_fetched feed=%s items=%d new=%d", feed.id, len(entries), len(unseen))
        self.crawler.stats.inc_value("newswatch/feeds/ok")
        for entry in unseen:
            yield response.follow(
                entry.link, callback=self.parse_article, errback=self.article_failed,
                cb_kwargs={"feed": feed, "entry": entry}, meta={"feed_id": feed.id},
            )

    def parse_article(self, response, feed: Feed, entry: FeedEntry):
        if not isinstance(response, scrapy.http.TextResponse):
            log.warning("article_skipped feed=%s url=%s reason=not HTML", feed.id, response.url)
            yield article_from_entry(feed, entry, _now())
            return
        html = decode_html(response.body, response.headers.get("Content-Type", b"").decode("latin-1"))
        try:
            yield article_from_page(feed, entry, html, response.url, _now())
        except NewswatchError as exc:
            log.warning("article_fallback feed=%s url=%s reason=%s", feed.id, response.url, exc)
            yield article_from_entry(feed, entry, _now())

    def article_failed(self, failure: Failure):
        feed, entry = failure.request.cb_kwargs["feed"], failure.request.cb_kwargs["entry"]
        log.warning("article_fallback feed=%s url=%s reason=%s", feed.id, entry.link, failure_reason(failure))
        self.crawler.stats.inc_value("newswatch/articles/from_feed")
        yield article_from_entry(feed, entry, _now())

    def feed_failed(self, failure: Failure):
        self._remember_failure(failure.request.cb_kwargs["feed"], failure_reason(failure))

    def _remember_failure(self, feed: Feed, reason: str) -> None:
        store = crawl_context(self.crawler).store
        log.warning("feed_failed feed=%s url=%s reason=%s", feed.id, feed.url, reason)
        self.crawler.stats.inc_value("newswatch/feeds/failed")
        store.set_feed_state(
            feed.id, record_failure(store.get_feed_state(feed.id), name=feed.name, now=_now(), reason=reason)
        )
