"""The crawl's Scrapy components beside the spider and the pipelines.

CrawlReport: one summary line per crawl, from the crawl's stats; Scrapy's duplicate refusal lines muted.
PrivateAddressGuard and ConnectedAddressGuard: the downloader middlewares that keep the crawler off private
addresses (crawler.failures.AddressPolicy), before a request is sent and on the address it reached.
"""

from __future__ import annotations

import logging

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached

from crawler.failures import REFUSAL_META, AddressPolicy, IPAddress, ip_literal

log = logging.getLogger(__name__)
# Scrapy settings (set by crawler.spiders.feeds.user_settings): the hosts of the configured feed URLs, and
# crawler.allow_private_hosts.
FEED_HOSTS_SETTING = "NEWSWATCH_FEED_HOSTS"
ALLOWED_SETTING = "NEWSWATCH_ALLOW_PRIVATE_HOSTS"
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
