"""What the crawler remembers about each feed between runs (kept in the store, not in memory; docs/crawler.md).

Keys read by `feeds status` and the digest's source-health section: name, last_success, last_error,
consecutive_failures, healthy, items_seen, next_due. The rest serves the crawler itself.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from crawler.schedule import failure_backoff

UNHEALTHY_AFTER = 5  # consecutive failures before a feed is reported unhealthy
# Even when the server keeps answering 304, fetch the whole body this often: some servers' validators
# never change although the feed does.
FULL_FETCH_EVERY = timedelta(hours=24)


def body_digest(body: bytes) -> str:
    """The hash kept of a feed body: an unchanged body is unchanged whatever the validators say."""
    return hashlib.sha1(body).hexdigest()


def conditional_headers(state: dict | None, url: str, now: datetime) -> dict[str, str]:
    """``If-None-Match`` / ``If-Modified-Since`` for a request of ``url``, from the validators the last full
    fetch of that same URL returned; none when there are none, or that fetch is older than FULL_FETCH_EVERY."""
    state = state or {}
    last_full = state.get("last_full_fetch")
    # A sitemap index rarely changes while its children do: it is always fetched in full.
    if state.get("validated_url") != url or not last_full or state.get("kind") == "sitemapindex":
        return {}
    if now - datetime.fromisoformat(last_full) >= FULL_FETCH_EVERY:
        return {}
    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    return headers


def full_fetch(url: str, etag: str | None, last_modified: str | None, digest: str, now: datetime) -> dict:
    """The state keys remembered from a 200 response: its validators (absent ones forgotten) and body hash."""
    return {"validated_url": url, "etag": etag, "last_modified": last_modified, "body_sha1": digest,
            "last_full_fetch": now.isoformat()}


def record_success(state: dict | None, *, name: str, now: datetime, items: int, new_items: int,
                   interval: timedelta, **remember) -> dict:
    """The feed's state after a successful poll that listed ``items`` entries, ``new_items`` of them unseen.

    The feed is next due ``interval`` from ``now``; ``remember`` adds or replaces crawler keys
    (validators, body hash, discovered feed URL, entry update stamps).
    """
    state = dict(state or {})
    state.update(remember)
    state.update(
        name=name,
        last_success=now.isoformat(),
        last_attempt=now.isoformat(),
        consecutive_failures=0,
        healthy=True,
        items_seen=int(state.get("items_seen", 0)) + new_items,
        last_items=items,
        interval_minutes=round(interval.total_seconds() / 60, 1),
        next_due=(now + interval).isoformat(),
    )
    if new_items:
        state["last_new_item"] = now.isoformat()
    return state


def record_failure(state: dict | None, *, name: str, now: datetime, reason: str, forget: tuple[str, ...] = ()) -> dict:
    """The feed's state after a failed fetch or parse, with the reason kept for `feeds status`.

    The feed is next due after an exponential backoff (crawler.schedule.failure_backoff); ``forget`` drops
    keys that led to the failure (a discovered feed URL that no longer works is discovered again).
    """
    state = {k: v for k, v in (state or {}).items() if k not in forget}
    failures = int(state.get("consecutive_failures", 0)) + 1
    state.update(
        name=name,
        last_error=reason,
        last_error_at=now.isoformat(),
        last_attempt=now.isoformat(),
        consecutive_failures=failures,
        healthy=failures < UNHEALTHY_AFTER,
        next_due=(now + failure_backoff(failures)).isoformat(),
    )
    return state
