"""Per-watch trends for a digest: the last 24 hours against the week before, first mentions, a 14-day chart.

They read the per-watch hourly counts the store keeps as hits are added (Store.mention_counts: distinct
articles per UTC hour, each counted at the hour newswatch first stored it, never its published date), for
the 14 local days the chart shows, and the latest earlier hour (Store.last_mention_before) for "first
mention in N days" and for where the watch's history starts: a few hundred rows per watch, whatever the
store holds. A chart day is a local day of the recipient's zone; an hour is dated by its start there, so
in a zone off UTC by a half hour (Tehran, Kabul) an article of the half hour after local midnight counts
for the day before.

What a trend may say (alerts.digests.build.Trend): nothing when the last 24 hours hold no article; "first
mention on record" when the store holds none before the digest's earliest article of the watch; "first
mention in N days" after more than a week of silence; "on record since D Mon" when the watch's history is
shorter than the week an average needs; else the 7-day daily average, with a spike mark when the last 24
hours reach SPIKE_AT_LEAST articles and SPIKE_RATIO times that average. Never an average of nothing, nor
of days before the watch's first mention on record (the chart shows them as no data).
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
from newswatch.core.times import aware, to_utc

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
    hour with one before that (``before``; None: none on record).

    With nothing on record before the chart, the watch's history starts at its first hour in ``hours``: the
    chart's days before that one are no data (DayCount.articles None, not 0), and when that hour is less
    than a week old there is no 7-day average to compare with (Trend.first_on_record).
    """
    now = aware(now)
    hours = {to_utc(hour): n for hour, n in hours.items() if n}
    this_hour = to_utc(now).replace(minute=0, second=0, microsecond=0)
    window = this_hour - timedelta(hours=23)  # the last 24 hours: this one and the 23 before
    week = window - timedelta(days=WEEK)
    last_24h = sum(n for hour, n in hours.items() if window <= hour <= this_hour)
    week_count = sum(n for hour, n in hours.items() if week <= hour < window)
    previous = max((hour for hour in hours if hour < window), default=before)
    quiet = None
    if last_24h and previous is not None and not week_count:
        quiet = (now.astimezone(zone).date() - previous.astimezone(zone).date()).days
    first = min(hours, default=None) if before is None else None
    by_day: Counter = Counter()
    for hour, n in hours.items():
        by_day[hour.astimezone(zone).date()] += n
    today = now.astimezone(zone).date()
    first_day = first.astimezone(zone).date() if first is not None else None
    days = []
    for day in (today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)):
        no_data = before is None and (first_day is None or day < first_day)
        days.append(DayCount(day, None if no_data else by_day[day]))
    # History shorter than 7 days (a watch whose first mention on record is less than a week old): an
    # average over the week before the last 24 hours would count days it has no record of as zeros.
    short = first is not None and first > this_hour - timedelta(days=WEEK)
    return Trend(
        last_24h=last_24h,
        average_7d=0.0 if short else week_count / WEEK,
        history=previous is not None,
        days_since_previous=quiet,
        days=tuple(days),
        first_on_record=first if short else None,
        record=tuple(sorted(hours.items())),
        before=before,
    )


def watch_trend(store: Store, watch: str, *, now: datetime, zone: ZoneInfo) -> Trend:
    """One watch's trend, read from the store's mention counts: the chart's hours and the latest one before
    (two bounded reads of the per-watch counts, whatever the store holds)."""
    start = chart_start(now, zone)
    hours = store.mention_counts(watch, start)
    return trend_from_hours(hours, now=now, zone=zone, before=store.last_mention_before(watch, start))


def watch_trends(store: Store, watches: Sequence[str], *, now: datetime, zone: ZoneInfo) -> dict[str, Trend]:
    """Trend of each watch; a store that cannot answer leaves trends out (one log line), never the digest."""
    trends = {}
    for watch in watches:
        try:
            trends[watch] = watch_trend(store, watch, now=now, zone=zone)
        except NewswatchError as exc:
            log.warning("trend_unavailable watch=%s reason=%s", watch, exc)
    return trends
