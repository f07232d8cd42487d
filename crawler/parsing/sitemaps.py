"""Sitemaps (plain, Google News, gzipped, indexes) as FeedEntry values, with lxml (docs/crawler.md)."""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from datetime import datetime, timedelta

from lxml import etree

from crawler.charset import xml_as_utf8
from crawler.parsing.xml import SAFE_XML, absolute_http, unique_entries
from newswatch.core.errors import FeedError
from newswatch.core.models import FeedEntry
from newswatch.core.times import parse_utc

log = logging.getLogger(__name__)

# The sitemap protocol caps a file at 50 MB uncompressed; more is an attack or a mistake.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
# Google News sitemaps list the last two days; a plain sitemap's older URLs are the archive, not news.
MAX_AGE = timedelta(days=3)
MAX_ENTRIES = 200  # most URLs followed from one sitemap in one crawl
MAX_CHILDREN = 5  # most child sitemaps of an index fetched in one crawl


def _sitemap_root(body: bytes, url: str) -> etree._Element:
    """Parse a (possibly gzipped) sitemap body; raise FeedError when it is not XML."""
    if body[:2] == b"\x1f\x8b":  # .xml.gz sitemaps are served as-is, not with Content-Encoding
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(MAX_SITEMAP_BYTES + 1)
        except (OSError, EOFError, zlib.error) as error:
            raise FeedError(f"not a sitemap: broken gzip data ({error})") from None
        if len(body) > MAX_SITEMAP_BYTES:
            raise FeedError("not a sitemap: larger than 50 MB uncompressed")
    if not body.strip():
        raise FeedError("not a sitemap: empty body")
    body = xml_as_utf8(body)  # a corrupt byte in a UTF-8 sitemap becomes U+FFFD (crawler.charset)
    try:
        root = etree.fromstring(body, etree.XMLParser(**SAFE_XML))
    except etree.XMLSyntaxError as error:
        # Real sitemaps often carry a stray unescaped "&": keep what lxml can recover, but say so.
        log.warning("sitemap_malformed url=%s reason=%s", url, error)
        root = etree.fromstring(body, etree.XMLParser(recover=True, **SAFE_XML))
    if root is None:
        raise FeedError("not a sitemap: not XML")
    return root


def _children(element: etree._Element) -> dict[str, etree._Element]:
    """Child elements by local name (sitemaps appear with and without their namespaces)."""
    return {etree.QName(c).localname: c for c in element if isinstance(c.tag, str)}


def _text(element: etree._Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _sitemap_items(body: bytes, url: str, wanted: str) -> list[dict[str, etree._Element]]:
    """The child elements of each item (<url> or <sitemap>) of a ``wanted`` root; FeedError for other roots."""
    root = _sitemap_root(body, url)
    name = etree.QName(root).localname
    if name != wanted:
        what = {"urlset": "a sitemap", "sitemapindex": "a sitemap index", "html": "an HTML page"}.get(name.lower())
        expected = "sitemap index" if wanted == "sitemapindex" else "sitemap"
        raise FeedError(f"not a {expected}: got {what or f'<{name}>'}")
    return [_children(item) for item in root if isinstance(item.tag, str)]


def parse_sitemap(body: bytes, url: str) -> list[FeedEntry]:
    """Parse a ``<urlset>`` sitemap (plain or Google News, optionally gzipped) fetched from ``url``.

    Each ``<url>`` gives a FeedEntry: link = ``<loc>`` (resolved against ``url``), guid = link,
    ``updated`` = ``<lastmod>``; news sitemaps add title and ``published`` (``news:publication_date``).
    Use ``published or updated`` for recency. Raises FeedError when ``body`` is not a urlset (a sitemap
    index is refused with that reason: see ``sitemap_index_entries``).
    """
    entries = []
    for fields in _sitemap_items(body, url, "urlset"):
        link = absolute_http(url, _text(fields.get("loc")))
        if link is None:
            continue
        news = _children(fields["news"]) if "news" in fields else {}
        published = parse_utc(_text(news.get("publication_date")))
        updated = parse_utc(_text(fields.get("lastmod")))
        entries.append(FeedEntry(_text(news.get("title")), link, published, guid=link, updated=updated))
    return unique_entries(entries)


def sitemap_index_entries(body: bytes, url: str) -> list[tuple[str, datetime | None]]:
    """The child sitemaps of a ``<sitemapindex>`` as (absolute URL, lastmod or None), without repeats.

    Raises FeedError when ``body`` is not a sitemap index.
    """
    found: dict[str, datetime | None] = {}
    for fields in _sitemap_items(body, url, "sitemapindex"):
        link = absolute_http(url, _text(fields.get("loc")))
        if link and link not in found:
            found[link] = parse_utc(_text(fields.get("lastmod")))
    return list(found.items())


def recent_children(
    children: list[tuple[str, datetime | None]], now: datetime, max_age: timedelta = MAX_AGE, limit: int = MAX_CHILDREN
) -> list[str]:
    """The child sitemaps worth fetching: those modified within ``max_age``, newest first, at most ``limit``.

    An index whose children carry no lastmod at all gives its first ``limit`` children (sites list the
    current sitemap first far more often than last); undated children of a dated index are skipped.
    """
    dated = [(when, link) for link, when in children if when is not None]
    if not dated:
        return [link for link, _ in children[:limit]]
    fresh = sorted((item for item in dated if now - item[0] <= max_age), reverse=True)
    return [link for _, link in fresh[:limit]]


def recent_entries(
    entries: list[FeedEntry], now: datetime, max_age: timedelta = MAX_AGE, limit: int = MAX_ENTRIES
) -> list[FeedEntry]:
    """The sitemap entries worth following: dated within ``max_age`` (``published or updated``), newest
    first, at most ``limit``. Undated entries are kept only when no entry has a date, up to ``limit``.

    A plain sitemap may list a site's whole archive: without this, a first crawl would fetch all of it.
    """
    dated = [e for e in entries if (e.published or e.updated) is not None]
    if not dated:
        return entries[:limit]
    fresh = [e for e in dated if now - (e.published or e.updated) <= max_age]
    fresh.sort(key=lambda e: e.published or e.updated, reverse=True)
    return fresh[:limit]
