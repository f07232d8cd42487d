"""What newswatch remembers about each feed between crawls, and the one rule that says how healthy it is.

The crawler writes a FeedState after every poll (crawler.polling.state); `feeds status` and the digest's
source-health section read it. The store keeps it as the JSON of :meth:`FeedState.to_json` (docs/crawler.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from newswatch.core.times import iso, parse_utc

UNHEALTHY_AFTER = 5  # consecutive failures before a feed is reported unhealthy


class Health(StrEnum):
    """How a configured feed is doing, as `feeds status` shows it."""

    OK = "ok"
    FAILING = "failing"  # failed its last polls, fewer than UNHEALTHY_AFTER in a row
    UNHEALTHY = "UNHEALTHY"
    NEVER_POLLED = "never polled"
    DISABLED = "disabled"


_TIMES = ("last_attempt", "last_success", "last_error_at", "last_new_item", "next_due", "last_full_fetch")


@dataclass(frozen=True)
class FeedState:
    """One feed's remembered state. The first group is what a poll found; the second is what the crawler
    keeps to poll the feed again politely (validators, the body's hash, where its feed was discovered, the
    ``updated`` stamps of the entries it lists, pages owed a retry)."""

    name: str = ""
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    items_seen: int = 0  # entries ever new to this feed
    last_items: int = 0  # entries listed at the last successful poll
    last_new_item: datetime | None = None
    interval_minutes: float | None = None
    next_due: datetime | None = None

    validated_url: str | None = None  # the URL the validators and body hash below belong to
    etag: str | None = None
    last_modified: str | None = None
    body_sha1: str | None = None
    last_full_fetch: datetime | None = None
    kind: str | None = None  # rss, atom, rdf, sitemap, sitemapindex or page
    resolved_url: str | None = None  # the feed a configured home page advertises
    entry_updates: dict[str, str] = field(default_factory=dict)  # article id -> entry's `updated` (ISO)
    page_retries: dict[str, int] = field(default_factory=dict)  # article id -> page retries left

    @property
    def healthy(self) -> bool:
        """False once the feed has failed UNHEALTHY_AFTER polls in a row."""
        return self.consecutive_failures < UNHEALTHY_AFTER

    def to_json(self) -> dict[str, Any]:
        """The stored form: times as ISO 8601 (UTC), and ``healthy`` for whoever reads the store directly."""
        data = asdict(self)
        for name in _TIMES:
            data[name] = iso(data[name])
        data["healthy"] = self.healthy
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedState:
        """A stored state back; tolerant of a partial or older one (a key missing or unreadable is its default)."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            value = data.get(spec.name)
            if value is None:
                continue
            if spec.name in _TIMES:
                value = parse_utc(value)
            elif spec.name in ("consecutive_failures", "items_seen", "last_items"):
                value = _number(value, int)
            elif spec.name == "interval_minutes":
                value = _number(value, float)
            elif spec.name in ("entry_updates", "page_retries"):
                value = dict(value) if isinstance(value, dict) else None
            else:
                value = str(value)
            if value is not None:
                values[spec.name] = value
        return cls(**values)


def _number(value: Any, kind: type) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def feed_health(state: FeedState | None, enabled: bool = True) -> Health:
    """The health of a configured feed from its state (None: never polled)."""
    if not enabled:
        return Health.DISABLED
    if state is None:
        return Health.NEVER_POLLED
    if not state.healthy:
        return Health.UNHEALTHY
    # Failing but not yet for UNHEALTHY_AFTER polls in a row (a new feed may never have worked).
    return Health.FAILING if state.consecutive_failures else Health.OK


class ConfiguredFeed(Protocol):
    """What the status rows need of a configured feed (core.config.feeds.Feed, which this floor cannot import)."""

    id: str
    name: str
    enabled: bool


def status_rows(feeds: Iterable[ConfiguredFeed], states: Mapping[str, FeedState], now: datetime) -> list[dict]:
    """One JSON-ready row per configured feed, as `feeds status` and the web page's sources show them: health
    (feed_health), last success and error, items seen, next due (times in ISO 8601, UTC)."""
    rows = []
    for feed in feeds:
        state = states.get(feed.id)
        known = state or FeedState()
        rows.append(
            {
                "id": feed.id,
                "name": feed.name,
                "health": feed_health(state, feed.enabled).value,
                "last_success": iso(known.last_success),
                "last_error": known.last_error,
                "last_error_at": iso(known.last_error_at),
                "consecutive_failures": known.consecutive_failures,
                "unhealthy_after": UNHEALTHY_AFTER,
                "items_seen": known.items_seen,
                "next_due": iso(known.next_due),
                "due_now": feed.enabled and (known.next_due is None or known.next_due <= now),
            }
        )
    return rows


# The order of "unhealthy first": what needs a look, then what has not run yet, then the rest.
_HEALTH_ORDER = {Health.UNHEALTHY: 0, Health.FAILING: 1, Health.NEVER_POLLED: 2, Health.OK: 3, Health.DISABLED: 4}


def unhealthy_first(rows: Iterable[dict]) -> list[dict]:
    """Status rows with the unhealthy feeds first, then failing, never polled, ok and disabled ones; the most
    failures first within each, then by id."""
    return sorted(rows, key=lambda r: (_HEALTH_ORDER.get(Health(r["health"]), 5), -r["consecutive_failures"], r["id"]))
