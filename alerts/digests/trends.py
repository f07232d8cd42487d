"""Per-watch trends for a digest: today's mentions against the week before, and first mentions (from the store).

They read the per-watch hourly counts the store keeps as hits are added (Store.mention_counts), for the
eight local days a trend looks at, and one earlier hour (Store.last_mention_before) for "first mention in
N days": a few hundred rows per watch, whatever the store holds. An hour is dated by its start in the
recipient's zone, so in a zone off UTC by a half hour (Tehran, Kabul) an article of the half hour after
local midnight counts for the day before.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.digests.build import Trend
from newswatch.core.errors import NewswatchError
from newswatch.core.store import Store
from newswatch.core.times import aware

log = logging.getLogger(__name__)

FIRST_MENTION_AFTER_DAYS = 7  # "first mention in N days" is said only after a quiet week or more
WEEK = 7


def mention_days(store: Store, watch: str, zone: ZoneInfo, today: date) -> tuple[Counter[date], date | None]:
    """Articles mentioning ``watch`` per local date, from 7 days before ``today``; and the local date of the
    latest mention before those days (None: none on record)."""
    start = datetime.combine(today - timedelta(days=WEEK), time(), zone)
    counts: Counter[date] = Counter()
    for hour, articles in store.mention_counts(watch, start).items():
        counts[aware(hour).astimezone(zone).date()] += articles
    earlier = store.last_mention_before(watch, start)
    return counts, aware(earlier).astimezone(zone).date() if earlier else None


def trend_from_counts(counts: Mapping[date, int], today: date, previous: date | None = None) -> Trend:
    """Today's count, the average of the 7 days before, and how long the watch was quiet before today
    (``previous``: the latest mention before the days ``counts`` holds, if any)."""
    today_count = counts.get(today, 0)
    week = sum(n for d, n in counts.items() if today - timedelta(days=WEEK) <= d < today)
    earlier = [d for d, n in counts.items() if d < today and n] or ([previous] if previous else [])
    quiet_for = (today - max(earlier)).days if earlier else None
    return Trend(
        today=today_count,
        average_7d=week / WEEK,
        days_since_previous=quiet_for if today_count and quiet_for and quiet_for > FIRST_MENTION_AFTER_DAYS else None,
        first_ever=bool(today_count and not earlier),
    )


def watch_trends(store: Store, watches: Sequence[str], *, now: datetime, zone: ZoneInfo) -> dict[str, Trend]:
    """Trend of each watch; a store that cannot answer leaves trends out (one log line), never the digest."""
    today = now.astimezone(zone).date()
    trends = {}
    for watch in watches:
        try:
            counts, previous = mention_days(store, watch, zone, today)
            trends[watch] = trend_from_counts(counts, today, previous)
        except NewswatchError as exc:
            log.warning("trend_unavailable watch=%s reason=%s", watch, exc)
    return trends
