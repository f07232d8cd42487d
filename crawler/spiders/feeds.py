"""The `feeds` spider: poll each due source, follow what is new, yield Articles. Logic lives in crawler/*."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta, timezone

import scrapy
from scrapy import signals
from scrapy.exceptions import StopDownload
from twisted.python.failure import Failure

from crawler.articles import article_from_entry, article_from_page, entry_article_id
from crawler.charset import decode_html
from crawler.context import crawl_context
from crawler.feedrun import FeedRun
from crawler.feedstate import body_digest, conditional_headers, full_fetch, record_failure
from crawler.limits import BYTES_META, REFUSAL_META, content_refusal, failure_reason, is_transient
from crawler.schedule import due_feeds
from crawler.scrapy_settings import apply_config
from crawler.seen import select_entries
from crawler.source import Children, Discovered, read_source
from newswatch.config import load_config
from newswatch.errors import NewswatchError
from newswatch.models import FeedEntry

log = logging.getLogger(__name__)
ROLE = "newswatch_role"  # request meta: "feed", "discovered" (feed found on a page), "child" (sitemap), "article"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _header(response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


class FeedsSpider(scrapy.Spider):
    """Poll the enabled feeds of config/feeds.yaml that are due (``-a all=1``: every one; ``-a feed=ID``: one)."""

    name = "feeds"

    def __init__(self, feed: str | None = None, all: str | bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.only_feed = feed
        self.every_feed = str(all).lower() in ("1", "true", "yes")
        self.in_flight: set[str] = set()  # article ids requested in this crawl, whichever feed listed them

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        apply_config(settings, load_config(settings.get("NEWSWATCH_CONFIG_DIR")))

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.headers_received, signal=signals.headers_received)
        crawler.signals.connect(spider.bytes_received, signal=signals.bytes_received)
        return spider

    async def start(self):
        context, now = crawl_context(self.crawler), _now()
        states = context.store.all_feed_states()
        slack = timedelta(minutes=context.config.settings.schedule.crawl_every_minutes / 2)
        feeds = due_feeds(context.config.feeds, states, now, only=self.only_feed, everything=self.every_feed,
                          slack=slack)
        log.info("crawl_planned feeds=%d due=%d", sum(f.enabled for f in context.config.feeds), len(feeds))
        for feed in feeds:
            run = FeedRun(feed, states.get(feed.id), now)
            context.runs.start(run)
            resolved = (run.prior or {}).get("resolved_url") if feed.kind in ("auto", "page") else None
            yield self._source(run, resolved or feed.url, "feed")

    def _source(self, run: FeedRun, url: str, role: str) -> scrapy.Request:
        # Pages owed a retry are listed in the body: a 304 would not show them, so no validators then.
        headers = conditional_headers(run.prior, url, run.started) if role == "feed" and not run.retries else {}
        return scrapy.Request(url, callback=self.parse_source, errback=self.source_failed, headers=headers,
                              cb_kwargs={"run": run, "role": role}, dont_filter=True,
                              meta={ROLE: role, "feed_id": run.feed.id, "handle_httpstatus_list": [304]})

    def headers_received(self, headers, body_length, request, spider):
        """Refuse a body that is not HTML/XML before downloading it (crawler.limits.content_refusal)."""
        reason = content_refusal(headers.get(b"Content-Type"), request.meta.get(ROLE))
        if reason:
            request.meta[REFUSAL_META] = reason
            raise StopDownload(fail=True)

    def bytes_received(self, data, request, spider):
        """Count a body's bytes, so a download cancelled at the size limit is reported as such."""
        request.meta[BYTES_META] = request.meta.get(BYTES_META, 0) + len(data)

    def parse_source(self, response, run: FeedRun, role: str):
        feed, prior = run.feed, run.prior or {}
        digest = body_digest(response.body)
        asked = response.meta.get("redirect_urls", [response.request.url])[0]  # the URL before redirects
        same_body = prior.get("body_sha1") == digest and prior.get("validated_url") == asked
        if role == "feed" and (response.status == 304 or (
                same_body and prior.get("kind") != "sitemapindex" and not run.retries)):
            run.unchanged = True
            log.info("feed_unchanged feed=%s url=%s reason=%s", feed.id, response.url,
                     "HTTP 304" if response.status == 304 else "same body")
            self.crawler.stats.inc_value("newswatch/feeds/unchanged")
            yield from self._close(run)
            return
        try:
            outcome = read_source(response.body, response.url, feed.kind, run.started,
                                  content_type=_header(response, "Content-Type"), discover=role == "feed")
        except NewswatchError as exc:
            yield from self._source_error(run, role, response.url, str(exc))
            return
        except Exception as exc:  # a parser bug must not leave the run open: its state would never be saved
            log.debug("source_internal_error url=%s", response.url, exc_info=True)
            yield from self._source_error(run, role, response.url, f"internal error: {exc!r}")
            return
        if role in ("feed", "discovered") and not isinstance(outcome, Discovered):
            run.remember.update(full_fetch(asked, _header(response, "ETag"),
                                           _header(response, "Last-Modified"), digest, run.started))
        run.remember["kind"] = getattr(outcome, "kind", "sitemapindex" if isinstance(outcome, Children) else "page")
        if isinstance(outcome, Discovered):
            log.info("feed_discovered feed=%s url=%s feed_url=%s", feed.id, response.url, outcome.url)
            run.remember["resolved_url"] = outcome.url
            self.crawler.stats.inc_value("newswatch/feeds/discovered")
            run.units += 1
            yield self._source(run, outcome.url, "discovered")
        elif isinstance(outcome, Children):
            log.info("sitemap_index feed=%s url=%s children=%d", feed.id, response.url, len(outcome.urls))
            run.units += len(outcome.urls)
            for url in outcome.urls:
                yield self._source(run, url, "child")
        else:
            yield from self._follow(run, response.url, outcome.entries, outcome.kind)
        if role != "child" and not isinstance(outcome, Discovered):  # a page that only led to its feed: not yet
            self.crawler.stats.inc_value("newswatch/feeds/ok")
        yield from self._close(run)

    def _follow(self, run: FeedRun, url: str, entries: list[FeedEntry], kind: str):
        store = crawl_context(self.crawler).store
        known = store.known_ids(entry_article_id(e) for e in entries)
        selection = select_entries(entries, known, (run.prior or {}).get("entry_updates", {}), self.in_flight,
                                   run.retries)
        run.add(entries, selection)
        why = Counter(reason for _, reason in selection.fetch)
        log.info("feed_fetched feed=%s url=%s kind=%s items=%d new=%d updated=%d retried=%d", run.feed.id, url,
                 kind, len(entries), why["new"], why["updated"], why["retry"])
        for entry, why in selection.fetch:
            self.in_flight.add(entry_article_id(entry))
            yield scrapy.Request(entry.link, callback=self.parse_article, errback=self.article_failed,
                                 cb_kwargs={"run": run, "entry": entry}, dont_filter=True,
                                 meta={ROLE: "article", "feed_id": run.feed.id, "why": why})

    def _close(self, run: FeedRun):
        """Close one unit of the run; a run with nothing left open saves its state now."""
        context = crawl_context(self.crawler)
        done = context.runs.close(run.feed.id)
        if done is not None:
            context.commit(done)
        return iter(())

    def parse_article(self, response, run: FeedRun, entry: FeedEntry):
        if not isinstance(response, scrapy.http.TextResponse):
            yield self._from_feed(run, entry, response.url, "not an HTML page")
            return
        html = decode_html(response.body, _header(response, "Content-Type"))
        try:
            article = article_from_page(run.feed, entry, html, response.url, _now())
        except Exception as exc:
            # Not only ExtractionError: whatever a page does to the extractors, the feed item stands in.
            if not isinstance(exc, NewswatchError):
                log.debug("article_internal_error url=%s", response.url, exc_info=True)
                exc = f"internal error: {exc!r}"
            yield self._from_feed(run, entry, response.url, exc)
            return
        run.page_done(article.id, stored_from_page=True)
        yield article

    def article_failed(self, failure: Failure):
        run, entry = failure.request.cb_kwargs["run"], failure.request.cb_kwargs["entry"]
        transient = is_transient(failure, max_body_bytes=self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        yield self._from_feed(run, entry, entry.link, self._reason(failure), transient)

    def _from_feed(self, run: FeedRun, entry: FeedEntry, url: str, reason, transient: bool = False):
        """The feed item's stand-in for a page that could not be had, with one warning line; the page is owed
        a retry when the failure may pass (crawler.feedrun)."""
        log.warning("article_fallback feed=%s url=%s reason=%s", run.feed.id, url, reason)
        self.crawler.stats.inc_value("newswatch/articles/from_feed")
        run.page_done(entry_article_id(entry), stored_from_page=False, transient=transient)
        return article_from_entry(run.feed, entry, _now())

    def source_failed(self, failure: Failure):
        kwargs, request = failure.request.cb_kwargs, failure.request
        asked = request.meta.get("redirect_urls", [request.url])[0]  # the URL polled, not where it redirected
        yield from self._source_error(kwargs["run"], kwargs["role"], asked, self._reason(failure))

    def _source_error(self, run: FeedRun, role: str, url: str, reason: str):
        context, feed = crawl_context(self.crawler), run.feed
        if role == "child":  # one broken child sitemap does not fail the whole source
            log.warning("sitemap_failed feed=%s url=%s reason=%s", feed.id, url, reason)
            run.partial = True
            self.crawler.stats.inc_value("newswatch/sitemaps/failed")
            return self._close(run)
        log.warning("feed_failed feed=%s url=%s reason=%s", feed.id, url, reason)
        self.crawler.stats.inc_value("newswatch/feeds/failed")
        context.runs.drop(feed.id)
        # A discovered feed URL that fails is discovered afresh next time.
        forget = ("resolved_url",) if url != feed.url else ()
        context.store.set_feed_state(
            feed.id, record_failure(run.prior, name=feed.name, now=run.started, reason=reason, forget=forget))
        return iter(())

    def _reason(self, failure: Failure) -> str:
        settings = self.crawler.settings
        return failure_reason(failure, max_body_bytes=settings.getint("DOWNLOAD_MAXSIZE"),
                              timeout=settings.getfloat("DOWNLOAD_TIMEOUT"),
                              max_redirects=settings.getint("REDIRECT_MAX_TIMES"))
