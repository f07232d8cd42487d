"""Managing config/feeds.yaml: find the feed behind a URL, OPML in and out, append entries, status rows."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

import feedparser
import yaml
from lxml import etree

from crawler.feeds import _SAFE_XML
from crawler.language import normalise_lang_tag
from crawler.schedule import next_due
from crawler.source import Children, Discovered, read_source
from newswatch.errors import FeedError
from newswatch.fetch import fetch_url

def find_feed(url: str, user_agent: str, now: datetime, timeout: float = 20) -> dict:
    """The feed a URL stands for, as a feeds.yaml entry (name, url, kind, language when the feed says).

    ``url`` may be a feed, a sitemap (index) or a page that advertises its feed; the feed found is fetched
    and parsed, so a feed that does not work is refused here. Raises FeedError with the reason.
    """
    body, final, content_type = fetch_url(url, user_agent, timeout)
    outcome = read_source(body, final, "auto", now, content_type=content_type)
    if isinstance(outcome, Discovered):
        url = outcome.url
        body, final, content_type = fetch_url(url, user_agent, timeout)
        outcome = read_source(body, final, "auto", now, content_type=content_type, discover=False)
    if isinstance(outcome, Children) or outcome.kind == "sitemap":
        return {"name": urlsplit(url).hostname or url, "url": url, "kind": "sitemap"}
    head = feedparser.parse(io.BytesIO(body)).feed
    entry = {"name": " ".join((head.get("title") or urlsplit(url).hostname or url).split()), "url": url,
             "kind": "atom" if outcome.kind == "atom" else "rss"}
    language = normalise_lang_tag(head.get("language"))
    if language:
        entry["language"] = language
    return entry


def parse_opml(body: bytes) -> list[dict]:
    """The feeds of an OPML file (every ``<outline xmlUrl=...>``, nested or not) as feeds.yaml entries."""
    try:
        root = etree.fromstring(body, etree.XMLParser(**_SAFE_XML))
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"not OPML: {exc}") from None
    if root is None or etree.QName(root).localname != "opml":
        raise FeedError("not OPML: no <opml> root element")
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url.startswith(("http://", "https://")):
            continue
        name = " ".join((outline.get("title") or outline.get("text") or urlsplit(url).hostname or url).split())
        entry = {"name": name, "url": url}
        language = normalise_lang_tag(outline.get("language"))
        if language:
            entry["language"] = language
        feeds.append(entry)
    return feeds


def to_opml(feeds, now: datetime) -> str:
    """An OPML 2.0 document listing ``feeds`` (config Feed objects), for other feed readers."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">', "  <head>",
             "    <title>newswatch feeds</title>", f"    <dateCreated>{format_datetime(now)}</dateCreated>",
             "  </head>", "  <body>"]
    for feed in feeds:
        attributes = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.language:
            attributes["language"] = feed.language
        lines.append("    <outline " + " ".join(f"{k}={quoteattr(v)}" for k, v in attributes.items()) + "/>")
    return "\n".join(lines + ["  </body>", "</opml>"]) + "\n"


def append_feeds(path: Path, entries: list[dict]) -> None:
    """Append ``entries`` to the ``feeds:`` list of the YAML file ``path``, keeping its comments and layout.

    The file is read back and must list exactly the old feeds plus these; otherwise (an unusual layout) it
    is rewritten as plain YAML, comments lost, rather than left wrong.
    """
    text = path.read_text(encoding="utf-8")
    before = (yaml.safe_load(text) or {}).get("feeds") or []
    found = re.search(r"^([ \t]*)- name:", text, re.MULTILINE)
    indent = found.group(1) if found else "  "
    if not before:
        text = re.sub(r"^feeds:.*$", "feeds:", text, count=1, flags=re.MULTILINE) if "feeds:" in text else text + "feeds:"
    block = "".join(
        f"{indent}- " + f"\n{indent}  ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in e.items()) + "\n"
        for e in entries
    )
    updated = text.rstrip("\n") + "\n" + block
    try:
        after = (yaml.safe_load(updated) or {}).get("feeds")
    except yaml.YAMLError:
        after = None
    if after != before + entries:
        updated = yaml.safe_dump({"feeds": before + entries}, allow_unicode=True, sort_keys=False)
    path.write_text(updated, encoding="utf-8")


def status_rows(feeds, states: dict[str, dict], now: datetime) -> list[dict]:
    """One row per configured feed for `feeds status`: health, last success/error, items seen, next due."""
    rows = []
    for feed in feeds:
        state = states.get(feed.id) or {}
        due = next_due(state)
        if not feed.enabled:
            health = "disabled"
        elif not state:
            health = "never polled"
        else:
            health = "ok" if state.get("healthy", True) else "UNHEALTHY"
        rows.append({
            "id": feed.id, "name": feed.name, "health": health,
            "last_success": state.get("last_success"), "last_error": state.get("last_error"),
            "last_error_at": state.get("last_error_at"),
            "consecutive_failures": int(state.get("consecutive_failures", 0)),
            "items_seen": int(state.get("items_seen", 0)),
            "next_due": due.isoformat() if due else None,
            "due_now": feed.enabled and (due is None or due <= now),
        })
    return rows
