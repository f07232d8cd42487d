"""What every parser of a downloaded document shares: safe XML options, absolute links, one entry per item."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from crawler.urls import canonical_url
from newswatch.core.models import FeedEntry

log = logging.getLogger(__name__)

# Never fetch DTDs or expand external entities from a document we downloaded (lxml parser options).
SAFE_XML = {"resolve_entities": False, "no_network": True, "load_dtd": False}
_WEB_SCHEMES = ("http", "https")


def absolute_http(base: str, href: str) -> str | None:
    """``href`` resolved against the http(s) URL ``base``; None when empty or not http(s) (nothing to fetch).

    When ``base`` is not a web URL (a local file read by the CLI) ``href`` is kept as written: resolving
    ``/2017/...`` against ``file:///home/...`` would only make up a path.
    """
    href = href.strip()
    try:
        if not href or urlsplit(base).scheme not in _WEB_SCHEMES:
            return href or None
        link = urljoin(base, href)
        return link if urlsplit(link).scheme in _WEB_SCHEMES else None
    except ValueError as error:  # urllib refuses some malformed URLs ("http://[oops/x": unclosed IPv6 bracket)
        log.warning("link_malformed url=%s link=%s reason=%s", base, href, error)
        return None


def unique_entries(entries: Iterable[FeedEntry]) -> list[FeedEntry]:
    """Drop later entries repeating an earlier guid or (canonically) the same link."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        keys = {f"guid:{entry.guid}", f"link:{canonical_url(entry.link)}"}
        if keys & seen:
            log.debug("feed_entry_duplicate link=%s guid=%s", entry.link, entry.guid)
            continue
        seen |= keys
        kept.append(entry)
    return kept
