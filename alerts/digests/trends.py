"""Per-watch trends for a digest: today's mentions against the week before, and first mentions (from the store)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.digests.build import Trend
from newswatch.core.errors import NewswatchError
from newswatch.core.store import Store
from newswatch.core.times import aware

log = logging.getLogger(__name__)

FIRST_MENTION_AFTER_DAYS = 7  # "first mention in N days" is said only after a quiet week or more
# The whole record, not a recent window: "first mention on record" and "in N days" need the last mention
# before today however old it is. One timestamp per article, so this stays small.
ON_RECORD = datetime(1970, 1, 1, tzinfo=UTC)


def mention_days(store: Store, watch: str, zone: ZoneInfo, since: datetime = ON_RECORD) -> list[date]:
    """Local dates of the articles mentioning ``watch`` (published, else fetched) from ``since``, oldest first."""
    return [aware(moment).astimezone(zone).date() for moment in store.mention_times(watch, since)]


def trend_from_days(days: Sequence[date], today: date) -> Trend:
    """Today's count, the average of the 7 days before, and how long the watch was quiet before today."""
    today_count = sum(1 for d in days if d == today)
    week = sum(1 for d in days if today - timedelta(days=7) <= d < today)
    earlier = [d for d in days if d < today]
    quiet_for = (today - max(earlier)).days if earlier else None
    return Trend(
        today=today_count,
        average_7d=week / 7,
        days_since_previous=quiet_for if today_count and quiet_for and quiet_for > FIRST_MENTION_AFTER_DAYS else None,
        first_ever=bool(today_count and not earlier),
    )


def watch_trends(store: Store, watches: Sequence[str], *, now: datetime, zone: ZoneInfo) -> dict[str, Trend]:
    """Trend of each watch; a store that cannot answer leaves trends out (one log line), never the digest."""
    today = now.astimezone(zone).date()
    trends = {}
    for watch in watches:
        try:
            trends[watch] = trend_from_days(mention_days(store, watch, zone), today)
        except NewswatchError as exc:
            log.warning("trend_unavailable watch=%s reason=%s", watch, exc)
    return trends
