"""What `newswatch feeds` does to config/feeds.yaml: find the feed behind a URL, OPML in and out, append entries."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

import feedparser
import yaml
from lxml import etree

from crawler.parsing.source import Children, Discovered, Entries, read_source
from crawler.parsing.xml import SAFE_XML
from newswatch.cli.fetch import Fetched, fetch_url
from newswatch.core.config.feeds import Feed
from newswatch.core.config.settings import CrawlerSettings
from newswatch.core.errors import FeedError
from newswatch.core.web import language_code, web_url

# The namespace of the attributes `feeds export` adds to OPML outlines (id, kind, country, enabled).
OPML_NAMESPACE = "https://github.com/newswatch/newswatch/opml"


@dataclass(frozen=True)
class FoundFeed:
    """What `feeds add` found: the feeds.yaml entry, and every URL met on the way (typed, redirected to,
    discovered): if any of them is configured already, so is this feed."""

    entry: dict
    urls: tuple[str, ...]


def _read(fetched: Fetched, label: str, now: datetime, discover: bool = True) -> Entries | Children | Discovered:
    try:
        return read_source(fetched.body, fetched.url, "auto", now, content_type=fetched.content_type, discover=discover)
    except FeedError as exc:
        raise FeedError(f"{label}: {exc}") from None


def find_feed(url: str, now: datetime, crawler: CrawlerSettings) -> FoundFeed:
    """The feed a URL stands for, as a feeds.yaml entry (name, url, kind, language when the feed says).

    ``url`` may be a feed, a sitemap (index) or a page that advertises its feed; the feed found is fetched
    (as the crawler would: its User-Agent and limits) and parsed, so a feed that does not work is refused
    here. The entry's URL is where permanent redirects lead. Raises FeedError naming the URL that failed.
    """
    fetched = fetch_url(url, crawler)
    urls = [url, fetched.url]
    outcome = _read(fetched, url, now)
    if isinstance(outcome, Discovered):
        page, url = url, outcome.url
        fetched = fetch_url(url, crawler)
        urls += [url, fetched.url]
        outcome = _read(fetched, f"{url} (the feed {page} advertises)", now, discover=False)
    url = fetched.permanent_url
    host = urlsplit(url).hostname or url
    if isinstance(outcome, Children) or outcome.kind == "sitemap":
        return FoundFeed({"name": host, "url": url, "kind": "sitemap"}, tuple(urls))
    head = feedparser.parse(io.BytesIO(fetched.body)).feed
    # A blank title names nothing: the host does.
    entry = {
        "name": " ".join((head.get("title") or "").split()) or host,
        "url": url,
        "kind": "atom" if outcome.kind == "atom" else "rss",
    }
    language = language_code(head.get("language"))
    if language:
        entry["language"] = language
    return FoundFeed(entry, tuple(urls))


@dataclass(frozen=True)
class Opml:
    """The feeds of an OPML file, and one line per outline that names no feed (not counting folders)."""

    feeds: list[dict]
    skipped: list[str]


def _web_url(value: str) -> str | None:
    """``value`` as an http(s) URL with a lower-case scheme (as feeds.yaml takes it), or None if it is not one."""
    try:
        return web_url(value)
    except ValueError:
        return None


def parse_opml(body: bytes, source: str = "OPML") -> Opml:
    """The feeds of an OPML file (every ``<outline xmlUrl=...>``, nested or not) as feeds.yaml entries.

    Attribute names are matched whatever their case (``xmlurl``); the ``newswatch:`` attributes of
    `feeds export` (id, kind, country, enabled) are read back when present. ``source`` names the file in
    errors and skip reasons.
    """
    try:
        root = etree.fromstring(body, etree.XMLParser(**SAFE_XML))
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"{source}: not OPML ({exc.msg})") from None
    if root is None or etree.QName(root).localname != "opml":
        raise FeedError(f"{source}: not OPML: no <opml> root element")
    feeds, skipped = [], []
    for outline in root.iter("{*}outline"):
        attributes = {k.lower(): v for k, v in outline.attrib.items() if not k.startswith("{")}
        given = attributes.get("xmlurl")
        url = _web_url(given or "")
        title = " ".join((attributes.get("title") or attributes.get("text") or "").split())
        if url is None:
            if given is not None or not len(outline):  # a folder of outlines is no feed and not skipped
                reason = f"xmlUrl {given.strip()!r} is not an http(s) URL" if given else "no xmlUrl"
                skipped.append(f"{source}:{outline.sourceline}: {title or '(untitled outline)'}: {reason}")
            continue
        entry = {"name": title or urlsplit(url).hostname, "url": url}
        language = language_code(attributes.get("language"))
        if language:
            entry["language"] = language
        for key in ("id", "kind", "country", "enabled"):
            value = outline.get(f"{{{OPML_NAMESPACE}}}{key}")
            if value is not None:
                entry[key] = value.strip()
        feeds.append(entry)
    return Opml(feeds, skipped)


def to_opml(feeds: list[Feed], now: datetime) -> str:
    """An OPML 2.0 document listing ``feeds``, for other feed readers.

    What OPML has no attribute for (id, kind, country, enabled) goes in ``newswatch:`` attributes, which
    other readers ignore, so that `feeds import` gives back the same feeds under the same ids (the crawl
    state is keyed by id). A sitemap is ``type="sitemap"``: readers that subscribe to ``type="rss"``
    outlines skip it rather than fail on it.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<opml version="2.0" xmlns:newswatch={quoteattr(OPML_NAMESPACE)}>',
        "  <head>",
        "    <title>newswatch feeds</title>",
        f"    <dateCreated>{format_datetime(now)}</dateCreated>",
        "  </head>",
        "  <body>",
    ]
    for feed in feeds:
        attributes = {
            "type": "sitemap" if feed.kind == "sitemap" else "rss",
            "text": feed.name,
            "title": feed.name,
            "xmlUrl": feed.url,
        }
        if feed.language:
            attributes["language"] = feed.language
        attributes.update({"newswatch:id": feed.id, "newswatch:kind": feed.kind})
        if feed.country:
            attributes["newswatch:country"] = feed.country
        attributes["newswatch:enabled"] = "true" if feed.enabled else "false"
        lines.append("    <outline " + " ".join(f"{k}={quoteattr(v)}" for k, v in attributes.items()) + "/>")
    return "\n".join([*lines, "  </body>", "</opml>"]) + "\n"


def append_feeds(path: Path, entries: list[dict]) -> bool:
    """Append ``entries`` to the ``feeds:`` list of the YAML file ``path``, keeping its comments and layout.

    The file is read back and must list exactly the old feeds plus these; otherwise (an unusual layout) it
    is rewritten as plain YAML, comments lost, rather than left wrong. Returns False when it was rewritten.
    """
    text = path.read_text(encoding="utf-8")
    before = (yaml.safe_load(text) or {}).get("feeds") or []
    # New items take the indentation of the list's first item, whatever key that item starts with.
    found = re.search(r"^feeds:[^\n]*\n(?:[ \t]*(?:#[^\n]*)?\n)*([ \t]*)- ", text, re.MULTILINE)
    indent = found.group(1) if found else "  "
    if not before:
        text = (
            re.sub(r"^feeds:.*$", "feeds:", text, count=1, flags=re.MULTILINE) if "feeds:" in text else text + "feeds:"
        )
    block = "".join(
        f"{indent}- " + f"\n{indent}  ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in e.items()) + "\n"
        for e in entries
    )
    updated = text.rstrip("\n") + "\n" + block
    try:
        after = (yaml.safe_load(updated) or {}).get("feeds")
    except yaml.YAMLError:
        after = None
    kept = after == before + entries
    if not kept:
        updated = yaml.safe_dump({"feeds": before + entries}, allow_unicode=True, sort_keys=False)
    path.write_text(updated, encoding="utf-8")
    return kept
