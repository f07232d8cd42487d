"""What a polled source's body gives: feed entries, child sitemaps to fetch, or a discovered feed URL (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crawler.charset import decode_html
from crawler.parsing.feeds import discover_feeds, feed_kind, parse_feed
from crawler.parsing.sitemaps import parse_sitemap, recent_children, recent_entries, sitemap_index_entries
from newswatch.core.errors import FeedError
from newswatch.core.models import FeedEntry

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Entries:
    """Items to consider, from an RSS/Atom feed ("rss", "atom", "rdf") or a sitemap ("sitemap")."""

    entries: list[FeedEntry]
    kind: str


@dataclass(frozen=True)
class Children:
    """A sitemap index: the child sitemaps worth fetching now."""

    urls: list[str]


@dataclass(frozen=True)
class Discovered:
    """An HTML page advertising a feed (``<link rel="alternate">``): poll ``url`` instead."""

    url: str


def read_source(
    body: bytes, url: str, kind: str, now: datetime, *, content_type: str | None = None, discover: bool = True
) -> Entries | Children | Discovered:
    """Interpret the body of a source fetched from ``url``; ``kind`` is the configured Feed.kind.

    RSS 0.9x/1.0/2.0 and Atom go through feedparser; sitemaps (plain, news, gzipped) keep their recent
    entries only (crawler.parsing.sitemaps.recent_entries); an index gives its recent children. An HTML page,
    with ``kind`` auto or page and ``discover`` set, gives the first feed it advertises. Raises FeedError
    with a one-line reason otherwise (malformed XML, an HTML page without a feed, an empty body...).
    """
    detected = "sitemap" if body[:2] == _GZIP_MAGIC else feed_kind(body)
    if detected == "sitemapindex":
        return Children(recent_children(sitemap_index_entries(body, url), now))
    if detected == "sitemap" or kind == "sitemap":
        return Entries(recent_entries(parse_sitemap(body, url), now), "sitemap")
    if detected == "html" and kind in ("auto", "page") and discover:
        links = discover_feeds(decode_html(body, content_type), url)
        if not links:
            raise FeedError('not a feed: an HTML page that advertises no feed (<link rel="alternate">)')
        return Discovered(links[0])
    return Entries(parse_feed(body, url, content_type), detected)
