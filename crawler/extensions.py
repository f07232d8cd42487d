"""The crawl's Scrapy components beside the spider and the pipelines.

CrawlReport: one summary line per crawl, from the crawl's stats, which it adds to the store's metrics (the web
page's /metrics); Scrapy's duplicate refusal lines muted.
SiteTurnQueue: the scheduler's queue, which takes the sites with requests waiting in turn, at a cost per
request that does not grow with the number of sites; with a shared frontier, only from the hosts this crawler
holds (crawler.frontier), giving back those it has nothing more for.
PageClaims: with a shared frontier, the downloader middleware that claims an article page before it is
fetched, and leaves a page another crawler claimed to it.
PrivateAddressGuard and ConnectedAddressGuard: the downloader middlewares that keep the crawler off private
addresses (crawler.failures.AddressPolicy), before a request is sent and on the address it reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterable

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.pqueues import ScrapyPriorityQueue
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import task

from crawler.failures import REFUSAL_META, AddressPolicy, IPAddress, ip_literal
from crawler.frontier import FrontierUnavailable
from newswatch.core.errors import NewswatchError
from newswatch.core.store import Store

log = logging.getLogger(__name__)
# Scrapy settings (set by crawler.spiders.feeds.user_settings): the hosts of the configured feed URLs, and
# crawler.allow_private_hosts.
FEED_HOSTS_SETTING = "NEWSWATCH_FEED_HOSTS"
ALLOWED_SETTING = "NEWSWATCH_ALLOW_PRIVATE_HOSTS"
# Request meta: the id of the article a page request is for (set by the spider), and, on a page request
# refused by PageClaims, that another crawler has the page.
ARTICLE_META = "newswatch_article"
CLAIMED_META = "newswatch_claimed_elsewhere"
HOST_CHECK_SECONDS = 0.25  # how often a crawler sharing a frontier gives back its idle hosts
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
        session = getattr(spider, "session", None)
        if session is not None:
            record_crawl_metrics(session.store, stats.get_stats(), reason, time.time())


def record_crawl_metrics(store: Store, stats: dict, reason: str, now: float) -> None:
    """Add one crawl's counts to the store's running totals, which the web page's /metrics reads: the crawl
    is a child process, and the store is what it shares with the service. A store that refuses is one warning
    (the crawl's articles are what matters)."""
    finished = reason == "finished"
    try:
        store.record_metrics(
            counts={
                "crawls": 1,
                "crawls_failed": 0 if finished else 1,
                "feeds_failed": stats.get("newswatch/feeds/failed", 0),
                "pages_fetched": stats.get("response_received_count", 0),
                "pages_failed": failed_downloads(stats),
                "articles_stored": stats.get("newswatch/articles/stored", 0),
            },
            latest={"last_crawl": now, **({"last_crawl_success": now} if finished else {})},
        )
    except NewswatchError as exc:
        log.warning("crawl_metrics_not_recorded reason=%s", exc)


def failed_downloads(stats: dict) -> int:
    """The downloads of a crawl that failed, from Scrapy's downloader stats (DOWNLOADER_STATS): responses with
    a 4xx or 5xx status and download exceptions (a retried download counts once per attempt). Left out:
    robots.txt's own (a site without one answers 404, no failure) and the requests refused on purpose
    (IgnoreRequest: robots.txt forbids, a private address, a page another crawler fetches)."""

    def total(prefix: str, counted=lambda rest: True) -> int:
        return sum(v for k, v in stats.items() if k.startswith(prefix) and counted(k[len(prefix) :]))

    def error_status(code: str) -> bool:
        return code[:1] in ("4", "5")

    statuses = total("downloader/response_status_count/", error_status)
    statuses -= total("robotstxt/response_status_count/", error_status)
    exceptions = stats.get("downloader/exception_count", 0)
    exceptions -= total("downloader/exception_type_count/", lambda name: name.endswith(".IgnoreRequest"))
    exceptions -= total("robotstxt/exception_count/")
    return max(statuses, 0) + max(exceptions, 0)


class SiteTurnQueue:
    """The scheduler's priority queue (``SCHEDULER_PRIORITY_QUEUE``): one Scrapy priority queue per download
    slot (site), and the sites with requests waiting taken in turn, the next one with nothing in the
    downloader first.

    Scrapy's DownloaderAwarePriorityQueue chooses the same way, but counts every waiting site's downloads on
    each pop, and adds up every site's queue for ``len()``: work per request that grows with the number of
    sites waiting (a pop and a ``len()``, with a stand-in downloader: 0.1 ms with 100 sites waiting, 2 ms with
    1,000, 20 ms with 5,000). Here a pop looks at no more than LOOKAHEAD sites of the turn (3-10 µs) and
    ``len()`` is a counter. A request for a site whose last request is still in the downloader (being
    fetched, or waiting out the delay between two requests to one site) would only wait there, holding a
    place of CONCURRENT_REQUESTS, so the turn skips such sites while another one is free.

    With a shared frontier (crawler.frontier), a site is popped from only while this crawler holds its host's
    lease (taken here, when no other crawler holds it), and every HOST_CHECK_SECONDS the hosts with nothing
    queued, nothing in the downloader and their delay since the last request spent are given back, so the
    next crawler to fetch from a site also waits out that delay after this one.
    """

    LOOKAHEAD = 32  # sites looked at per pop, at most

    def __init__(
        self,
        crawler: Crawler,
        downstream_queue_cls: type,
        key: str,
        slot_startprios: dict[str, Iterable[int]] | None = None,
        *,
        start_queue_cls: type | None = None,
    ):
        self.crawler, self.downstream_queue_cls, self.key = crawler, downstream_queue_cls, key
        self._start_queue_cls = start_queue_cls
        self._downloader = crawler.engine.downloader
        self.pqueues: dict[str, ScrapyPriorityQueue] = {}  # slot -> its requests
        self._turns: deque[str] = deque()  # the slots of pqueues, each once, in turn
        self._size = 0
        for slot, startprios in (slot_startprios or {}).items():
            queue = self.pqfactory(slot, startprios)
            self._add(slot, queue)
        session = getattr(getattr(crawler, "spider", None), "session", None)
        self._frontier = session.frontier if session is not None and session.frontier.shared else None
        self._hosts_timer: task.LoopingCall | None = None
        if self._frontier is not None:
            self._hosts_timer = task.LoopingCall(self._give_back_idle_hosts)
            self._hosts_timer.start(HOST_CHECK_SECONDS, now=False)

    @classmethod
    def from_crawler(cls, crawler: Crawler, downstream_queue_cls: type, key: str, startprios=None, **kwargs):
        return cls(crawler, downstream_queue_cls, key, startprios, **kwargs)

    def pqfactory(self, slot: str, startprios: Iterable[int] = ()) -> ScrapyPriorityQueue:
        return ScrapyPriorityQueue(
            self.crawler,
            self.downstream_queue_cls,
            f"{self.key}/{hashlib.sha1(slot.encode()).hexdigest()}" if self.key else "",  # a folder name
            startprios,
            start_queue_cls=self._start_queue_cls,
        )

    def _add(self, slot: str, queue: ScrapyPriorityQueue) -> None:
        self.pqueues[slot] = queue
        self._turns.append(slot)
        self._size += len(queue)

    def _busy(self, slot: str) -> int:
        """Requests of ``slot`` in the downloader now."""
        downloading = self._downloader.slots.get(slot)
        return len(downloading.active) if downloading is not None else 0

    def _choose(self) -> str | None:
        """Take the slot to pop from off the turn: the first free one of the next LOOKAHEAD, else the least
        busy of them; the others looked at go to the end of the turn, in their order. With a shared frontier,
        only a slot whose host this crawler holds (or takes now); None when none of them."""
        turns, seen, best, least = self._turns, [], None, None
        for n in range(min(self.LOOKAHEAD, len(turns))):
            seen.append(turns.popleft())
            busy = self._busy(seen[-1])
            if (least is None or busy < least) and (self._frontier is None or self._frontier.may_fetch(seen[-1])):
                best, least = n, busy
                if busy == 0:
                    break
        if best is None:
            turns.extend(seen)
            return None
        turns.extend(seen[:best] + seen[best + 1 :])
        return seen[best]

    def push(self, request: Request) -> None:
        slot = self._downloader.get_slot_key(request)
        queue = self.pqueues.get(slot)
        if queue is None:
            queue = self.pqfactory(slot)
            self.pqueues[slot] = queue
            self._turns.append(slot)
        queue.push(request)
        self._size += 1

    def pop(self) -> Request | None:
        if not self._turns:
            return None
        slot = self._choose()
        if slot is None:  # every site waiting is another crawler's now: the host check wakes the engine
            return None
        queue = self.pqueues[slot]
        request = queue.pop()
        if request is not None:
            self._size -= 1
        if len(queue):
            self._turns.append(slot)  # its next request waits for its next turn
        else:
            del self.pqueues[slot]
            queue.close()
        return request

    def peek(self) -> Request | None:
        """The request ``pop`` would return now (NotImplementedError if the queues cannot peek)."""
        if not self._turns:
            return None
        window = [self._turns[n] for n in range(min(self.LOOKAHEAD, len(self._turns)))]
        if self._frontier is not None:
            window = [s for s in window if self._frontier.may_fetch(s)]
            if not window:
                return None
        slot = next((s for s in window if self._busy(s) == 0), None)
        if slot is None:
            slot = min(window, key=self._busy)
        return self.pqueues[slot].peek()

    def _give_back_idle_hosts(self) -> None:
        """Give the frontier back the hosts this crawler has nothing queued or downloading for, once their
        delay since the last request is spent; then wake the engine, which may be waiting for a host that
        another crawler gave back meanwhile (else it would look again at its next 5-second heartbeat)."""
        downloader, now = self._downloader, time.time()
        busy = set(self.pqueues) | {downloader.get_slot_key(request) for request in downloader.active}
        held = self._frontier.held_hosts()
        idle = []
        for host in held:
            slot = downloader.slots.get(host)
            if host not in busy and (slot is None or (not slot.active and now - slot.lastseen >= slot.delay)):
                idle.append(host)
        # Requests waiting for a host another crawler holds: hold nothing idle meanwhile (see release_hosts).
        self._frontier.release_hosts(idle, waiting=not set(self.pqueues) <= set(held))
        engine_slot = getattr(self.crawler.engine, "_slot", None)
        if self._size and engine_slot is not None:
            engine_slot.nextcall.schedule()

    def close(self) -> dict[str, list[int]]:
        if self._hosts_timer is not None and self._hosts_timer.running:
            self._hosts_timer.stop()
        active = {slot: queue.close() for slot, queue in self.pqueues.items()}
        self.pqueues.clear()
        self._turns.clear()
        self._size = 0
        return active

    def __len__(self) -> int:
        return self._size

    def __contains__(self, slot: str) -> bool:
        return slot in self.pqueues


class PageClaims:
    """With a shared frontier, the first downloader middleware: claim an article page before anything is sent
    for it (its robots.txt included); a page another crawler claimed is refused here with CLAIMED_META set,
    and the spider leaves it to that crawler. While Redis cannot be reached, the request waits for it."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageClaims:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        article_id = request.meta.get(ARTICLE_META)
        frontier = self.crawler.spider.session.frontier
        if article_id is None or not frontier.shared:
            return
        while True:
            try:
                claimed = frontier.claim_page(article_id)
                break
            except FrontierUnavailable:
                await asyncio.sleep(frontier.retry_in())
        if not claimed:
            request.meta[CLAIMED_META] = True
            raise IgnoreRequest("another crawler fetches this page")


class _AddressGuard:
    def __init__(self, policy: AddressPolicy):
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Crawler):
        settings = crawler.settings
        return cls(AddressPolicy.of(settings.getlist(FEED_HOSTS_SETTING), settings.getlist(ALLOWED_SETTING)))

    def _check(self, request: Request, host: str, address: IPAddress) -> None:
        """Raise IgnoreRequest when ``address`` is refused; the request's errback logs the one line (with the
        feed, the URL and this reason, crawler.failures.classify_failure)."""
        reason = self.policy.refusal(host, address)
        if reason is None:
            return
        if request.meta.get("redirect_urls"):
            reason += f" after a redirect to {request.url}"
        reason += "; crawler.allow_private_hosts can allow it"
        log.debug("request_refused url=%s reason=%s", request.url, reason)
        request.meta[REFUSAL_META] = reason
        raise IgnoreRequest(reason)


class PrivateAddressGuard(_AddressGuard):
    """Refuse a request whose host is, or resolves to, a private address, before anything is sent (robots.txt
    included: it runs before RobotsTxtMiddleware). Redirect and meta-refresh targets are new requests, so they
    pass here too. A name that does not resolve is let through: the download then fails and says why."""

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).hostname
        if not host or self.policy.listed(host):
            return
        address = ip_literal(host)
        if address is None:
            from twisted.internet import reactor  # the crawl's, with Scrapy's DNS cache: what the download uses

            try:
                address = ip_literal(await maybe_deferred_to_future(reactor.resolve(host)))
            except Exception:
                return
            if address is None:
                return
        self._check(request, host, address)


class ConnectedAddressGuard(_AddressGuard):
    """Refuse a response that came from a private address (``response.ip_address``, what the download actually
    connected to), so that a name resolving to a public address when checked and to a private one when
    connected (DNS rebinding) gets nothing parsed or stored. It sees responses first, before the redirect,
    retry and decompression middlewares act on them. A response that records no address passes."""

    def process_response(self, request: Request, response: Response) -> Response:
        host = urlparse_cached(request).hostname
        if host and response.ip_address is not None:
            self._check(request, host, response.ip_address)
        return response
