"""Per-watch trends for a digest: the last 24 hours against the week before, first mentions, a 14-day chart.

They read the per-watch hourly counts the store keeps as hits are added (Store.mention_counts: distinct
articles per UTC hour, each counted at the hour newswatch first stored it, never its published date), for
the 14 local days the chart shows, and one earlier hour (Store.last_mention_before) for "first mention in
N days" when those days hold none: a few hundred rows per watch, whatever the store holds. A chart day is
a local day of the recipient's zone; an hour is dated by its start there, so in a zone off UTC by a half
hour (Tehran, Kabul) an article of the half hour after local midnight counts for the day before.

What a trend may say (alerts.digests.build.Trend): nothing when the last 24 hours hold no article; "first
mention on record" when no earlier one is; "first mention in N days" after more than a week of silence;
else the 7-day daily average, with a spike mark when the last 24 hours reach SPIKE_AT_LEAST articles and
SPIKE_RATIO times that average. Never an average of nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.digests.build import DayCount, Trend
from newswatch.core.errors import NewswatchError
from newswatch.core.store import Store
from newswatch.core.times import aware

log = logging.getLogger(__name__)

CHART_DAYS = 14
WEEK = 7


def chart_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Local midnight of the first day of the chart (13 days before today, in ``zone``)."""
    today = now.astimezone(zone).date()
    return datetime.combine(today - timedelta(days=CHART_DAYS - 1), time(), zone)


def trend_from_hours(
    hours: Mapping[datetime, int], *, now: datetime, zone: ZoneInfo, before: datetime | None = None
) -> Trend:
    """The trend of a watch from its articles per UTC hour since ``chart_start`` (``hours``), and the latest
    hour with one before that (``before``; None: none on record)."""
    now = aware(now)
    hours = {aware(hour): n for hour, n in hours.items() if n}
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    window = this_hour - timedelta(hours=23)  # the last 24 hours: this one and the 23 before
    week = window - timedelta(days=WEEK)
    last_24h = sum(n for hour, n in hours.items() if window <= hour <= this_hour)
    week_count = sum(n for hour, n in hours.items() if week <= hour < window)
    previous = max((hour for hour in hours if hour < window), default=before)
    quiet = None
    if last_24h and previous is not None and not week_count:
        quiet = (now.astimezone(zone).date() - previous.astimezone(zone).date()).days
    by_day: Counter = Counter()
    for hour, n in hours.items():
        by_day[hour.astimezone(zone).date()] += n
    today = now.astimezone(zone).date()
    days = tuple(
        DayCount(day, by_day.get(day, 0))
        for day in (today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS))
    )
    return Trend(
        last_24h=last_24h,
        average_7d=week_count / WEEK,
        history=previous is not None,
        days_since_previous=quiet,
        days=days,
    )


def watch_trend(store: Store, watch: str, *, now: datetime, zone: ZoneInfo) -> Trend:
    """One watch's trend, read from the store's mention counts."""
    start = chart_start(now, zone)
    hours = store.mention_counts(watch, start)
    window = aware(now).replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    earlier_in_chart = any(n and aware(hour) < window for hour, n in hours.items())
    before = None if earlier_in_chart else store.last_mention_before(watch, start)
    return trend_from_hours(hours, now=now, zone=zone, before=before)


def watch_trends(store: Store, watches: Sequence[str], *, now: datetime, zone: ZoneInfo) -> dict[str, Trend]:
    """Trend of each watch; a store that cannot answer leaves trends out (one log line), never the digest."""
    trends = {}
    for watch in watches:
        try:
            trends[watch] = watch_trend(store, watch, now=now, zone=zone)
        except NewswatchError as exc:
            log.warning("trend_unavailable watch=%s reason=%s", watch, exc)
    return trends
