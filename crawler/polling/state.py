"""A feed's state after a poll (newswatch.core.feedstate.FeedState), and the conditional request it allows.

The state lives in the store, not in memory: every crawl is a fresh process (docs/crawler.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta
from typing import Any

from crawler.polling.intervals import failure_backoff
from newswatch.core.feedstate import FeedState

# Even when the server keeps answering 304, fetch the whole body this often: some servers' validators
# never change although the feed does.
FULL_FETCH_EVERY = timedelta(hours=24)


def body_digest(body: bytes) -> str:
    """The hash kept of a feed body: an unchanged body is unchanged whatever the validators say."""
    return hashlib.sha1(body).hexdigest()


def conditional_headers(state: FeedState | None, url: str, now: datetime) -> dict[str, str]:
    """``If-None-Match`` / ``If-Modified-Since`` for a request of ``url``, from the validators the last full
    fetch of that same URL returned; none when there are none, or that fetch is older than FULL_FETCH_EVERY."""
    # A sitemap index rarely changes while its children do: it is always fetched in full.
    if state is None or state.validated_url != url or not state.last_full_fetch or state.kind == "sitemapindex":
        return {}
    if now - state.last_full_fetch >= FULL_FETCH_EVERY:
        return {}
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def full_fetch(url: str, etag: str | None, last_modified: str | None, digest: str, now: datetime) -> dict[str, Any]:
    """The state fields remembered from a 200 response: its validators (absent ones forgotten) and body hash."""
    return {
        "validated_url": url,
        "etag": etag,
        "last_modified": last_modified,
        "body_sha1": digest,
        "last_full_fetch": now,
    }


def record_success(
    state: FeedState | None,
    *,
    name: str,
    now: datetime,
    items: int,
    new_items: int,
    interval: timedelta,
    **remember: Any,
) -> FeedState:
    """The feed's state after a successful poll that listed ``items`` entries, ``new_items`` of them unseen.

    The feed is next due ``interval`` from ``now``; ``remember`` replaces the crawler's own fields
    (validators, body hash, discovered feed URL, entry update stamps, page retries).
    """
    state = state or FeedState()
    return dataclasses.replace(
        state,
        **remember,
        name=name,
        last_success=now,
        last_attempt=now,
        consecutive_failures=0,
        items_seen=state.items_seen + new_items,
        last_items=items,
        interval_minutes=round(interval.total_seconds() / 60, 1),
        next_due=now + interval,
        last_new_item=now if new_items else state.last_new_item,
    )


def record_failure(
    state: FeedState | None, *, name: str, now: datetime, reason: str, forget_resolved_url: bool = False
) -> FeedState:
    """The feed's state after a failed fetch or parse, with the reason kept for `feeds status`.

    The feed is next due after an exponential backoff (crawler.polling.intervals.failure_backoff); with
    ``forget_resolved_url`` a discovered feed URL that no longer works is discovered again next time.
    """
    state = state or FeedState()
    failures = state.consecutive_failures + 1
    return dataclasses.replace(
        state,
        name=name,
        last_error=reason,
        last_error_at=now,
        last_attempt=now,
        consecutive_failures=failures,
        next_due=now + failure_backoff(failures),
        resolved_url=None if forget_resolved_url else state.resolved_url,
    )
