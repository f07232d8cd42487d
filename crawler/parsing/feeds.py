"""RSS/Atom feeds and feed autodiscovery as FeedEntry values (feedparser); sitemaps are in sitemaps.py."""

from __future__ import annotations

import io
import logging
import re
import time
import xml.sax
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import feedparser
import lxml.html
from lxml import etree
from w3lib.html import remove_tags, replace_entities, replace_tags

from crawler.charset import xml_as_utf8
from crawler.parsing.xml import SAFE_XML, absolute_http, unique_entries
from newswatch.core.errors import FeedError
from newswatch.core.models import FeedEntry

log = logging.getLogger(__name__)

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
_ROOT_KINDS = {"rss": "rss", "feed": "atom", "RDF": "rdf", "urlset": "sitemap", "sitemapindex": "sitemapindex"}
_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml")
# At the very start (after a BOM, blank space and comments): an HTML tag later in the opening bytes may sit
# inside a feed's CDATA.
_HTML_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<(?:html|head|body)[\s>])", re.IGNORECASE | re.DOTALL
)
# Inline tags vanish without a trace ("<b>Syria</b>," stays "Syria,"); every other tag separates words.
_INLINE_TAGS = (
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "em",
    "font",
    "i",
    "mark",
    "q",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "u",
)


def feed_kind(body: bytes) -> str:
    """Tell what a fetched body is from its root element, without parsing all of it.

    Returns "rss", "atom", "rdf" (RSS 1.0), "sitemap", "sitemapindex", "html" or "unknown".
    """
    try:
        for _event, element in etree.iterparse(io.BytesIO(body), events=("start",), recover=True, **SAFE_XML):
            name = etree.QName(element).localname
            return "html" if name.lower() in ("html", "head", "body") else _ROOT_KINDS.get(name, "unknown")
    except etree.XMLSyntaxError:
        pass
    # The XML parser stops at HTML5's lower-case "<!doctype html>" (XML wants DOCTYPE), so most home pages
    # land here: look for an HTML start in the opening bytes instead.
    return "html" if _HTML_START.match(body[:4096]) else "unknown"


def _plain(text: str, content_type: str = "text/html") -> str:
    """Markup-free, whitespace-collapsed text of a feed field (feedparser keeps HTML fields as HTML)."""
    if content_type != "text/plain":
        text = replace_entities(replace_tags(remove_tags(text, which_ones=_INLINE_TAGS), " "))
    return " ".join(text.split())


def _struct_to_utc(value: time.struct_time | None) -> datetime | None:
    """feedparser's parsed dates are UTC struct_times; make them aware datetimes."""
    return datetime(*value[:6], tzinfo=UTC) if value else None


def _detail_type(entry: Any, field: str) -> str:
    return (entry.get(f"{field}_detail") or {}).get("type", "text/html")


def _malformed_reason(error: xml.sax.SAXParseException, body: bytes) -> str:
    """One-line reason for an XML syntax error, with the line as the user's file numbers it."""
    line = error.getLineNumber()
    # feedparser prepends an XML declaration line when the body has none, shifting expat's count.
    if not _XML_DECLARATION.match(body):
        line -= 1
    return f"malformed XML: {error.getMessage()} (line {max(line, 1)})"


def _feed_entry(raw: Any, url: str, version: str) -> FeedEntry | None:
    """One feedparser entry as a FeedEntry; None when it has no http(s) link to follow."""
    link = absolute_http(url, raw.get("link") or "")
    if link is None:
        log.debug("feed_entry_skipped reason=no_link guid=%s", raw.get("id", ""))
        return None
    summary = raw.get("summary")
    summary_type = _detail_type(raw, "summary")
    if not summary and raw.get("content"):  # Atom entries may carry only <content>
        summary, summary_type = raw["content"][0].get("value", ""), raw["content"][0].get("type", "text/html")
    # The dict's own lookup: FeedParserDict's falls back from "updated" to "published" with a DeprecationWarning.
    updated = _struct_to_utc(dict.get(raw, "updated_parsed"))
    published = _struct_to_utc(raw.get("published_parsed"))
    if published is None and version.startswith("rss"):
        # feedparser files <dc:date> under "updated"; in RSS (1.0 above all) it is the item's date.
        published, updated = updated, None
    elif published is None:
        # An Atom entry need not have <published>; its <updated> is then the best date it states (it stays
        # its updated time too: a later <updated> is how a changed entry is noticed).
        published = updated
    return FeedEntry(
        title=_plain(raw.get("title", ""), _detail_type(raw, "title")),
        link=link,
        published=published,
        summary=_plain(summary or "", summary_type),
        guid=(raw.get("id") or "").strip() or link,
        author=_plain(raw.get("author", ""), "text/plain"),
        updated=updated,
    )


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> list[FeedEntry]:
    """Parse an RSS (0.9x, 1.0, 2.0) or Atom (0.3, 1.0) feed fetched from ``url``.

    Relative links are resolved against ``url``; dates are aware UTC datetimes (None when absent);
    title and summary are plain text; guid is the entry id, else its link. Entries repeating a guid or
    link are dropped, as are entries without an http(s) link. A valid feed without items gives [].
    The body is decoded as crawler.charset.xml_as_utf8 decides (``content_type`` is the HTTP header, if
    any): in a UTF-8 feed, a corrupt byte costs that byte (U+FFFD), not the feed's encoding.
    Raises FeedError with a one-line reason when ``body`` is empty, an HTML page, or not a feed.
    """
    if not body.strip():
        raise FeedError("not a feed: empty body")
    body = xml_as_utf8(body, content_type)
    # A BytesIO, never the bytes: feedparser treats a str/bytes argument as a possible URL or file path.
    # No base URL, no URI resolution inside content, no HTML sanitizing: fields become plain text here and
    # links are resolved against ``url`` by _feed_entry (after feedparser applied any xml:base). Both passes
    # cost a third of feedparser's time and changed nothing we keep.
    parsed = feedparser.parse(io.BytesIO(body), resolve_relative_uris=False, sanitize_html=False)
    version = parsed.get("version") or ""
    entries = [e for e in (_feed_entry(raw, url, version) for raw in parsed.entries) if e is not None]
    error = parsed.get("bozo_exception")
    syntax_error = error if isinstance(error, xml.sax.SAXParseException) else None
    if parsed.entries:
        if syntax_error is not None:
            # feedparser's lenient parser recovered the items: use them, but say the feed is broken.
            log.warning("feed_malformed url=%s reason=%s", url, _malformed_reason(syntax_error, body))
        return unique_entries(entries)
    if parsed.version and syntax_error is None:
        return []
    kind = feed_kind(body)
    if kind == "html":
        raise FeedError("not a feed: got an HTML page")
    if kind in ("sitemap", "sitemapindex"):
        raise FeedError(f"not a feed: got a {'sitemap index' if kind == 'sitemapindex' else 'sitemap'}")
    if syntax_error is not None:
        raise FeedError(_malformed_reason(syntax_error, body))
    raise FeedError("not a feed: no RSS or Atom root element")


def discover_feeds(html: str, url: str) -> list[str]:
    """Return the feed URLs a page advertises with ``<link rel="alternate" type="application/rss+xml">``
    (or atom+xml / rdf+xml), absolute and in page order, without repeats. [] when there are none."""
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    base = absolute_http(url, next((b.get("href", "") for b in tree.iterfind(".//base[@href]")), "")) or url
    found = []
    for link in tree.iterfind(".//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" in rel and kind in FEED_TYPES:
            found.append(absolute_http(base, link.get("href")))
    return [href for href in dict.fromkeys(found) if href]


def feed_to_json(entries: Iterable[FeedEntry]) -> list[dict[str, Any]]:
    """JSON-ready items for ``newswatch feed --json``: title, link, published/updated (ISO 8601 or None),
    summary, guid, author."""
    return [
        {
            "title": e.title,
            "link": e.link,
            "published": e.published.isoformat() if e.published else None,
            "updated": e.updated.isoformat() if e.updated else None,
            "summary": e.summary,
            "guid": e.guid,
            "author": e.author,
        }
        for e in entries
    ]
