"""The `feeds` spider: poll each due source, follow what is new, yield Articles. Logic lives in crawler/*."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import StopDownload
from twisted.python.failure import Failure

from crawler.articles import article_from_entry, article_from_page, entry_article_id
from crawler.charset import decode_html
from crawler.extensions import ALLOWED_SETTING, ARTICLE_META, CLAIMED_META, FEED_HOSTS_SETTING
from crawler.failures import BYTES_META, REFUSAL_META, RequestFailure, classify_failure, content_refusal
from crawler.frontier import FrontierUnavailable, open_frontier
from crawler.parsing.source import Children, Discovered, read_source
from crawler.pipelines import FLUSH_NOW
from crawler.polling.intervals import due_feeds, is_due
from crawler.polling.run import FeedRun
from crawler.polling.selection import select_entries
from crawler.polling.state import body_digest, conditional_headers, full_fetch, record_failure
from crawler.session import CrawlSession
from newswatch.core.config import Config, load_config
from newswatch.core.errors import NewswatchError
from newswatch.core.feedstate import FeedState
from newswatch.core.models import FeedEntry
from newswatch.core.store import open_store
from newswatch.core.times import utc_now

log = logging.getLogger(__name__)
ROLE = "newswatch_role"  # request meta: "feed", "discovered" (feed found on a page), "child" (sitemap), "article"
# With a shared frontier, a crawler takes another feed while fewer than this many of its feed requests are
# unanswered and nothing waits for its parser: a busy crawler leaves the rest of the cycle to the others.
FEEDS_IN_FLIGHT = 8
PAGE_CLAIMS = "crawler.extensions.PageClaims"
TAKE_PACE_SECONDS = 0.02  # at most one feed taken this often while there is room
WAIT_SECONDS = 0.2  # a shared cycle with nothing to take now (other crawlers hold the rest): asked again after


def _header(response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def user_settings(config: Config) -> dict[str, Any]:
    """The Scrapy settings that config/settings.yaml decides, by Scrapy name, over crawler/settings.py; and
    the hosts of feeds.yaml, which the private-address guards let through (crawler.extensions)."""
    crawler = config.settings.crawler
    return {
        FEED_HOSTS_SETTING: sorted({urlsplit(feed.url).hostname or "" for feed in config.feeds} - {""}),
        ALLOWED_SETTING: list(crawler.allow_private_hosts),
        "USER_AGENT": crawler.user_agent,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawler.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": crawler.download_timeout,
        "DOWNLOAD_MAXSIZE": crawler.max_body_bytes,
        "REDIRECT_MAX_TIMES": crawler.max_redirects,
        "ROBOTSTXT_OBEY": crawler.obey_robots_txt,
        "NEWSWATCH_BATCH_SIZE": crawler.store_batch_size,
        "NEWSWATCH_FLUSH_SECONDS": crawler.store_flush_seconds,
    }


class FeedsSpider(scrapy.Spider):
    """Poll the enabled feeds of config/feeds.yaml that are due (``-a all=1``: every one; ``-a feed=ID``: one).

    ``config`` is the loaded Config when `newswatch crawl` starts the crawl; under `scrapy crawl` the spider
    loads it from the NEWSWATCH_CONFIG_DIR setting.
    """

    name = "feeds"

    def __init__(self, session: CrawlSession, feed: str | None = None, all: str | bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.session = session
        self.only_feed = feed
        self.every_feed = str(all).lower() in ("1", "true", "yes")
        self.in_flight: set[str] = set()  # article ids requested in this crawl, whichever feed listed them
        self.feeds_asked = 0  # feed requests sent and not answered yet

    @classmethod
    def from_crawler(cls, crawler, *args, config: Config | None = None, **kwargs):
        config = config or load_config(crawler.settings.get("NEWSWATCH_CONFIG_DIR"))
        # 'spider' priority, above crawler/settings.py's 'project' and below `-s` on the command line. The
        # settings freeze right after this method (Crawler.crawl), so the components built then see them.
        crawler.settings.setdict(user_settings(config), priority="spider")
        if config.settings.crawler.frontier.type != "local":  # pages claimed before anything else is done
            middlewares = crawler.settings.getdict("DOWNLOADER_MIDDLEWARES")
            crawler.settings.set("DOWNLOADER_MIDDLEWARES", {**middlewares, PAGE_CLAIMS: 30}, priority="spider")
        session = CrawlSession(config=config, store=open_store(config), frontier=open_frontier(config))
        try:
            spider = super().from_crawler(crawler, *args, session=session, **kwargs)
        except BaseException:
            session.close()
            raise
        crawler.signals.connect(spider.headers_received, signal=signals.headers_received)
        crawler.signals.connect(spider.bytes_received, signal=signals.bytes_received)
        # The pipelines' close_spider (which flushes) runs before the engine stops, and so before this.
        crawler.signals.connect(session.close, signal=signals.engine_stopped, weak=False)
        return spider

    async def start(self):
        session, now = self.session, utc_now()
        config = session.config
        states = session.store.all_feed_states()
        slack = timedelta(minutes=config.settings.schedule.crawl_every_minutes / 2)
        feeds = due_feeds(config.feeds, states, now, only=self.only_feed, everything=self.every_feed, slack=slack)
        log.info("crawl_planned feeds=%d due=%d", sum(f.enabled for f in config.feeds), len(feeds))
        if not session.frontier.shared or self.only_feed:  # one crawler's own crawl (or one feed, asked for)
            for feed in feeds:
                yield self._poll(feed, states.get(feed.id), now)
            return
        async for request in self._shared_cycle(feeds, slack):
            yield request

    async def _shared_cycle(self, feeds, slack: timedelta):
        """Join the frontier's cycle with ``feeds``, then poll the feeds it gives this crawler, one at a time
        while this crawler has room (see FEEDS_IN_FLIGHT), until the cycle has nothing left anywhere."""
        session, frontier = self.session, self.session.frontier
        why = "all" if self.every_feed else "due"
        await self._frontier(frontier.open_cycle, [(f.id, urlsplit(f.url).hostname or "", why) for f in feeds])
        by_id = {feed.id: feed for feed in session.config.feeds}
        while True:
            if not self._has_room():
                await asyncio.sleep(0.02)
                continue
            taken = await self._frontier(frontier.take)
            if taken.finished:
                return
            if not taken.feeds:  # the others hold the rest: they may be waiting for this one's feeds too
                self.crawler.signals.send_catch_log(signal=FLUSH_NOW)
                await asyncio.sleep(WAIT_SECONDS)
                continue
            for feed_id, planned in taken.feeds:
                feed, now = by_id.get(feed_id), utc_now()
                # Read again: another crawler may have polled it since this one planned (or died after it).
                prior = await asyncio.to_thread(session.store.get_feed_state, feed_id) if feed else None
                if feed is None or (planned == "due" and not is_due(prior, now, slack)):
                    frontier.feed_done(feed_id)  # not in this config's feeds.yaml, or not due any more
                    continue
                yield self._poll(feed, prior, now)
            # Paced: a feed answers in milliseconds and its pages follow; the parser shows the load after.
            await asyncio.sleep(TAKE_PACE_SECONDS)

    async def _frontier(self, call, *args):
        """``call(*args)`` on the frontier, waiting while Redis cannot be reached (the frontier says so once)."""
        while True:
            try:
                return call(*args)
            except FrontierUnavailable:
                await asyncio.sleep(self.session.frontier.retry_in())

    def _has_room(self) -> bool:
        """Whether this crawler should take another feed of a shared cycle now: it has none open, or fewer
        than FEEDS_IN_FLIGHT unanswered and at most one response in its parser (more means its CPU is the
        limit: the pages it has keep it busy, and another crawler may take the next feed)."""
        scraper = self.crawler.engine.scraper.slot
        parsing = len(scraper.queue) + len(scraper.active) if scraper is not None else 0
        return not self.session.runs.open or (self.feeds_asked < FEEDS_IN_FLIGHT and parsing <= 1)

    def _poll(self, feed, prior: FeedState | None, now) -> scrapy.Request:
        run = FeedRun(feed, prior, now)
        self.session.runs.start(run)
        resolved = run.prior.resolved_url if run.prior and feed.kind in ("auto", "page") else None
        return self._source(run, resolved or feed.url, "feed")

    def _source(self, run: FeedRun, url: str, role: str) -> scrapy.Request:
        # Pages owed a retry are listed in the body: a 304 would not show them, so no validators then.
        headers = conditional_headers(run.prior, url, run.started) if role == "feed" and not run.retries else {}
        self.feeds_asked += role == "feed"
        return scrapy.Request(
            url,
            callback=self.parse_source,
            errback=self.source_failed,
            headers=headers,
            cb_kwargs={"run": run, "role": role},
            dont_filter=True,
            meta={ROLE: role, "feed_id": run.feed.id, "handle_httpstatus_list": [304]},
        )

    def headers_received(self, headers, body_length, request, spider):
        """Refuse a body that is not HTML/XML before downloading it (crawler.failures.content_refusal)."""
        reason = content_refusal(headers.get(b"Content-Type"), request.meta.get(ROLE))
        if reason:
            request.meta[REFUSAL_META] = reason
            raise StopDownload(fail=True)

    def bytes_received(self, data, request, spider):
        """Count a body's bytes, so a download cancelled at the size limit is reported as such."""
        request.meta[BYTES_META] = request.meta.get(BYTES_META, 0) + len(data)

    def parse_source(self, response, run: FeedRun, role: str):
        self.feeds_asked -= role == "feed"
        feed, prior = run.feed, run.prior or FeedState()
        digest = body_digest(response.body)
        asked = response.meta.get("redirect_urls", [response.request.url])[0]  # the URL before redirects
        same_body = prior.body_sha1 == digest and prior.validated_url == asked
        if role == "feed" and (
            response.status == 304 or (same_body and prior.kind != "sitemapindex" and not run.retries)
        ):
            run.unchanged = True
            log.info(
                "feed_unchanged feed=%s url=%s reason=%s",
                feed.id,
                response.url,
                "HTTP 304" if response.status == 304 else "same body",
            )
            self.crawler.stats.inc_value("newswatch/feeds/unchanged")
            yield from self._close(run)
            return
        try:
            outcome = read_source(
                response.body,
                response.url,
                feed.kind,
                run.started,
                content_type=_header(response, "Content-Type"),
                discover=role == "feed",
            )
        except NewswatchError as exc:
            yield from self._source_error(run, role, response.url, str(exc))
            return
        except Exception as exc:  # a parser bug must not leave the run open: its state would never be saved
            log.debug("source_internal_error url=%s", response.url, exc_info=True)
            yield from self._source_error(run, role, response.url, f"internal error: {exc!r}")
            return
        if role in ("feed", "discovered") and not isinstance(outcome, Discovered):
            run.remember.update(
                full_fetch(asked, _header(response, "ETag"), _header(response, "Last-Modified"), digest, run.started)
            )
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
        known = self.session.store.known_ids(entry_article_id(e) for e in entries)
        selection = select_entries(
            entries, known, run.prior.entry_updates if run.prior else {}, self.in_flight, run.retries
        )
        run.add(entries, selection)
        # In flight from now, not as each request is yielded: Scrapy takes a callback's requests lazily, so
        # another feed listing the same article may be selected before this generator reaches it.
        self.in_flight.update(entry_article_id(entry) for entry, _ in selection.fetch)
        why = Counter(reason for _, reason in selection.fetch)
        log.info(
            "feed_fetched feed=%s url=%s kind=%s items=%d new=%d updated=%d retried=%d",
            run.feed.id,
            url,
            kind,
            len(entries),
            why["new"],
            why["updated"],
            why["retry"],
        )
        for entry, why in selection.fetch:
            article_id = entry_article_id(entry)
            yield scrapy.Request(
                entry.link,
                callback=self.parse_article,
                errback=self.article_failed,
                cb_kwargs={"run": run, "entry": entry},
                dont_filter=True,
                meta={ROLE: "article", "feed_id": run.feed.id, "why": why, ARTICLE_META: article_id},
            )

    def _close(self, run: FeedRun):
        """Close one unit of the run; a run with nothing left open saves its state now."""
        done = self.session.runs.close(run.feed.id)
        if done is not None:
            self.session.commit(done)
        return iter(())

    def parse_article(self, response, run: FeedRun, entry: FeedEntry):
        if not isinstance(response, scrapy.http.TextResponse):
            yield self._from_feed(run, entry, response.url, "not an HTML page")
            return
        html = decode_html(response.body, _header(response, "Content-Type"))
        try:
            article = article_from_page(run.feed, entry, html, response.url, utc_now())
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
        if failure.request.meta.get(CLAIMED_META):  # another crawler fetches this page (a shared frontier)
            log.debug("article_claimed_elsewhere feed=%s url=%s", run.feed.id, entry.link)
            yield from self._close(run)
            return
        failed = self._classify(failure)
        yield self._from_feed(run, entry, entry.link, failed.reason, failed.transient)

    def _from_feed(self, run: FeedRun, entry: FeedEntry, url: str, reason, transient: bool = False):
        """The feed item's stand-in for a page that could not be had, with one warning line; the page is owed
        a retry when the failure may pass (crawler.polling.run)."""
        log.warning("article_fallback feed=%s url=%s reason=%s", run.feed.id, url, reason)
        self.crawler.stats.inc_value("newswatch/articles/from_feed")
        run.page_done(entry_article_id(entry), stored_from_page=False, transient=transient)
        return article_from_entry(run.feed, entry, utc_now())

    def source_failed(self, failure: Failure):
        kwargs, request = failure.request.cb_kwargs, failure.request
        self.feeds_asked -= kwargs["role"] == "feed"
        asked = request.meta.get("redirect_urls", [request.url])[0]  # the URL polled, not where it redirected
        yield from self._source_error(kwargs["run"], kwargs["role"], asked, self._classify(failure).reason)

    def _source_error(self, run: FeedRun, role: str, url: str, reason: str):
        feed = run.feed
        if role == "child":  # one broken child sitemap does not fail the whole source
            log.warning("sitemap_failed feed=%s url=%s reason=%s", feed.id, url, reason)
            run.partial = True
            self.crawler.stats.inc_value("newswatch/sitemaps/failed")
            return self._close(run)
        log.warning("feed_failed feed=%s url=%s reason=%s", feed.id, url, reason)
        self.crawler.stats.inc_value("newswatch/feeds/failed")
        self.session.runs.drop(feed.id)
        # A discovered feed URL that fails is discovered afresh next time.
        self.session.store.set_feed_state(
            feed.id,
            record_failure(
                run.prior, name=feed.name, now=run.started, reason=reason, forget_resolved_url=url != feed.url
            ),
        )
        self.session.frontier.feed_done(feed.id)
        return iter(())

    def _classify(self, failure: Failure) -> RequestFailure:
        settings = self.crawler.settings
        return classify_failure(
            failure,
            max_body_bytes=settings.getint("DOWNLOAD_MAXSIZE"),
            timeout=settings.getfloat("DOWNLOAD_TIMEOUT"),
            max_redirects=settings.getint("REDIRECT_MAX_TIMES"),
        )
