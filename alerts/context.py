"""What a digest says beyond its hits: per-watch trends and the health of the sources (read from the store)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from alerts.digest import FeedHealth, Trend
from newswatch.errors import NewswatchError
from newswatch.store import Store

log = logging.getLogger(__name__)

FIRST_MENTION_AFTER_DAYS = 7  # "first mention in N days" is said only after a quiet week or more
# The whole record, not a recent window: "first mention on record" and "in N days" need the last mention
# before today however old it is. One timestamp per article, so this stays small.
ON_RECORD = datetime(1970, 1, 1, tzinfo=timezone.utc)


def mention_days(store: Store, watch: str, zone: ZoneInfo, since: datetime = ON_RECORD) -> list[date]:
    """Local dates of the articles mentioning ``watch`` (published, else fetched) from ``since``, oldest first."""
    days = []
    for moment in store.mention_times(watch, since):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        days.append(aware.astimezone(zone).date())
    return days


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


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def source_health(
    states: Mapping[str, Mapping], feed_names: Mapping[str, str], *, now: datetime, silent_after: timedelta
) -> list[FeedHealth]:
    """Feeds of ``feed_names`` (the enabled ones, id → name) that are failing, or silent for ``silent_after``.

    Tolerant of partial state: any key may be missing. A feed never crawled yet is not listed.
    """
    listed = []
    for feed_id, name in feed_names.items():
        state = states.get(feed_id)
        if not isinstance(state, Mapping):
            continue
        last_success = _when(state.get("last_success"))
        try:
            failures = int(state.get("consecutive_failures") or 0)
        except (TypeError, ValueError):
            failures = 0
        error = state.get("last_error")
        failing = state.get("healthy") is False or (failures > 0 and last_success is None)
        last_news = _when(state.get("last_new_item")) or last_success
        silent = last_news is not None and now - last_news > silent_after
        if failing or silent:
            listed.append(
                FeedHealth(
                    feed_id=feed_id,
                    name=str(state.get("name") or name or feed_id),
                    status="failing" if failing else "silent",
                    last_success=last_success,
                    last_error=" ".join(str(error).split())[:200] if error and failing else None,
                    consecutive_failures=failures,
                )
            )
    return sorted(listed, key=lambda f: (f.status != "failing", f.name.casefold()))
